/* syscall.c - SYSCALL enters the guest's own LSTAR entry with RCX/R11 set (SDM vol. 2B
 * SYSCALL); with EFER.SCE clear it raises #UD. The guest's SYSCALL must never reach the host
 * kernel: on trap_emulate Syscall User Dispatch turns it into SIGSYS and it is emulated.
 * (SYSRET returns to CPL 3, which this CPL-0-only guest model does not exercise.) */
#include "guest.h"

volatile uint64_t saved_rcx, saved_r11, syscall_count;
extern char syscall_entry[], after_syscall[], ud_syscall[], after_ud_syscall[];
__asm__(".text\n"
        "syscall_entry:\n\t"
        "movq %rcx, saved_rcx(%rip)\n\t"
        "movq %r11, saved_r11(%rip)\n\t"
        "incq syscall_count(%rip)\n\t"
        "jmp *%rcx\n");

static void on_ud(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->rip, (uint64_t)ud_syscall);
    f->rip = (uint64_t)after_ud_syscall;
}

int main(void)
{
    idt_init();
    idt_set_handler(6, on_ud);
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~1ULL);
    __asm__ volatile("ud_syscall: syscall\n\tafter_ud_syscall:" ::: "rcx", "r11", "memory");
    GUEST_ASSERT_EQ(isr_count[6], 1);

    wrmsr(MSR_STAR, (uint64_t)GUEST_SEL_CODE << 32);
    wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
    wrmsr(MSR_SFMASK, RFLAGS_IF);
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | 1);  /* SCE */
    __asm__ volatile("movq $60, %%rax\n\t" /* the host's exit(): must not reach the host */
                     "syscall\n\tafter_syscall:" ::
                         : "rax", "rcx", "r11", "memory");
    GUEST_ASSERT_EQ(syscall_count, 1);
    GUEST_ASSERT_EQ(saved_rcx, (uint64_t)after_syscall);
    GUEST_ASSERT_EQ(saved_r11 & RFLAGS_IF, 0);
    GUEST_DONE();
}
