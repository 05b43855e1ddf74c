/* iretq.c - IRETQ with a hand-built frame lands where the frame says and loads RFLAGS.IF:
 * afterwards timer interrupts arrive. On trap_emulate IRETQ to a CPL-0 selector faults and is
 * emulated. Passes everywhere. */
#include "guest.h"

static void on_timer(struct isr_frame *f)
{
    (void)f;
}
static bool ticked(void)
{
    return isr_count[0x40] >= 2;
}

int main(void)
{
    idt_init();
    idt_set_handler(0x40, on_timer);
    timer_start(0x40, 1000);
    uint64_t landed = 0;
    __asm__ volatile("movq %%rsp, %%rax\n\t"
                     "pushq $0x10\n\t"  /* SS */
                     "pushq %%rax\n\t"  /* RSP */
                     "pushq $0x202\n\t" /* RFLAGS: IF */
                     "pushq $0x08\n\t"  /* CS */
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t" /* RIP */
                     "iretq\n"
                     "1: movq $1, %0"
                     : "=r"(landed)
                     :
                     : "rax", "memory");
    GUEST_ASSERT_EQ(landed, 1);
    GUEST_ASSERT(spin_until(ticked, 500000));
    cli();
    timer_stop();
    GUEST_DONE();
}
