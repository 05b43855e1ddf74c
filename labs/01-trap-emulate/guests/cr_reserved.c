/* cr_reserved.c - lab 1: MOV to CR0 or CR4 with a reserved bit set raises #GP(0) and changes
 * nothing (Intel SDM vol. 2B, "MOV-Move to/from Control Registers": "#GP(0) if an attempt is
 * made to write a 1 to any reserved bit in CR4 ... or bits 63:32 of CR0"). Run on the
 * emulating backends only: PVM and QEMU TCG's SVM (the nested kvm_amd run) skip this check,
 * so guest_tests/mov_cr_faults.c leaves it out. */
#include "guest.h"

static volatile uint64_t resume_at, faults;

static void on_gp(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->error_code, 0);
    faults++;
    f->rip = resume_at;
}

#define TRY_WRITE_CR(n, v)                                                                         \
    __asm__ volatile("leaq 1f(%%rip), %%r11\n\t"                                                   \
                     "movq %%r11, %0\n\t"                                                          \
                     "movq %1, %%cr" #n "\n"                                                       \
                     "1:"                                                                          \
                     : "=m"(resume_at)                                                             \
                     : "r"((uint64_t)(v))                                                          \
                     : "r11", "memory")

int main(void)
{
    idt_init();
    idt_set_handler(13, on_gp);
    uint64_t cr0 = READ_CR(0), cr4 = READ_CR(4);
    TRY_WRITE_CR(0, cr0 | (1ULL << 32));
    GUEST_ASSERT_EQ(faults, 1);
    TRY_WRITE_CR(0, cr0 | (1ULL << 63));
    GUEST_ASSERT_EQ(faults, 2);
    GUEST_ASSERT_EQ(READ_CR(0), cr0);
    TRY_WRITE_CR(4, cr4 | (1ULL << 40));
    GUEST_ASSERT_EQ(faults, 3);
    TRY_WRITE_CR(4, cr4 | (1ULL << 12)); /* LA57: the virtual CPU has no 5-level paging */
    GUEST_ASSERT_EQ(faults, 4);
    GUEST_ASSERT_EQ(READ_CR(4), cr4);
    TRY_WRITE_CR(3, READ_CR(3) | (1ULL << 60)); /* beyond any physical address */
    GUEST_ASSERT_EQ(faults, 5);
    GUEST_DONE();
}
