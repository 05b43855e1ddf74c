/* robust_single_step.c - the guest's own trap flag: after a POPF sets TF, each following
 * instruction completes and then raises #DB (a trap: the frame's RIP is the next instruction,
 * DR6.BS set); the POPF itself does not trap, nor does the IRETQ that returns from the #DB
 * handler with TF set in the image. SDM vol. 3B 18.3.1.4, vol. 2B POPF. The handler clears TF
 * after the third step. PUSHF under TF shows TF set. */
#include "guest.h"

#define RFLAGS_TF (1ULL << 8)

static volatile uint64_t rips[8], steps;

static void on_db(struct isr_frame *f)
{
    if (steps < 8)
        rips[steps] = f->rip;
    if (++steps == 3)
        f->rflags &= ~RFLAGS_TF;
}

int main(void)
{
    idt_init();
    idt_set_handler(1, on_db);
    uint64_t a1, a2, a3, seen;
    __asm__ volatile("lea 1f(%%rip), %0\n lea 2f(%%rip), %1\n lea 3f(%%rip), %2\n"
                     "pushfq\n orq $0x100, (%%rsp)\n popfq\n"
                     "pushfq\n 1: nop\n 2: popq %3\n 3: nop\n nop\n"
                     : "=&r"(a1), "=&r"(a2), "=&r"(a3), "=&r"(seen)::"memory", "cc");
    GUEST_ASSERT_EQ(steps, 3);
    GUEST_ASSERT_EQ(rips[0], a1); /* after the PUSHF that followed the POPF */
    GUEST_ASSERT_EQ(rips[1], a2);
    GUEST_ASSERT_EQ(rips[2], a3);
    GUEST_ASSERT_EQ(seen & RFLAGS_TF, RFLAGS_TF);
    GUEST_ASSERT_EQ(pushf() & RFLAGS_TF, 0);
    GUEST_ASSERT((READ_DR(6) >> 14) & 1); /* DR6.BS */
    GUEST_DONE();
}
