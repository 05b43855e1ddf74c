/* exit_kick_storm.c - VMM exits back to back (IN from the clock port) while a 100 us timer
 * kicks the vCPU, for 3 s: tens of thousands of kicks, some landing while the VMM enters or
 * leaves the guest. A kick that lands in host code must be taken for the VMM's, never for
 * the guest's (trap_emulate once read the VMM's registers as the guest's when a kick landed
 * between marking the vCPU as in the guest and entering it: a crash about once in 200 runs
 * of timer_cli). The guest checks that its registers and the ticks survive. */
#include "guest.h"

GUEST_EXPECT_TIMEOUT("30");

/* exits(patterns, rounds): RBX, RBP, R12-R15 from patterns[0..5]; `rounds` INs from the clock
 * port; 0 if the six registers always held. */
__asm__(
    ".text\n"
    "exits:\n"
    "  push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
    "  mov 0(%rdi), %rbx\n mov 8(%rdi), %rbp\n mov 16(%rdi), %r12\n mov 24(%rdi), %r13\n"
    "  mov 32(%rdi), %r14\n mov 40(%rdi), %r15\n"
    "  mov $0x51c, %edx\n"
    "1: in %dx, %eax\n"
    "  cmp 0(%rdi), %rbx\n jne 2f\n cmp 8(%rdi), %rbp\n jne 2f\n cmp 16(%rdi), %r12\n jne 2f\n"
    "  cmp 24(%rdi), %r13\n jne 2f\n cmp 32(%rdi), %r14\n jne 2f\n cmp 40(%rdi), %r15\n jne 2f\n"
    "  dec %rsi\n jnz 1b\n"
    "  xor %eax, %eax\n jmp 3f\n"
    "2: mov $1, %eax\n"
    "3: pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n"
    "  ret\n");
uint64_t exits(const uint64_t *patterns, uint64_t rounds);

static void on_tick(struct isr_frame *f)
{
    (void)f;
}

int main(void)
{
    static const uint64_t patterns[6] = {0x0101010101010101, 0x0202020202020202,
                                         0x0303030303030303, 0x0404040404040404,
                                         0x0505050505050505, 0x0606060606060606};
    idt_init();
    idt_set_handler(0x40, on_tick);
    timer_start(0x40, 100);
    sti();
    uint32_t t0 = clock_us();
    while (clock_us() - t0 < 3000000)
        GUEST_ASSERT_EQ(exits(patterns, 1000), 0);
    cli();
    timer_stop();
    GUEST_ASSERT(isr_count[0x40] > 100);
    GUEST_DONE();
}
