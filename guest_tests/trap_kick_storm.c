/* trap_kick_storm.c - emulated instructions back to back while a 200 us timer interrupts the
 * guest: every tick is a kick of the vCPU, and on trap_emulate many land while the signal
 * handler is resuming the guest (trap_entry.S trap_direct_return: a kick there must be taken
 * for the interrupted guest, not for the handler's own registers). Registers that hold known
 * values are checked after every trap, and the ticks must keep coming. */
#include "guest.h"

GUEST_EXPECT_TIMEOUT("20");

/* storm(patterns, rounds): load RBX, RBP, R8-R15 from patterns[0..9], run `rounds` times
 * CLI; STI; MOV RAX to CR3 (RAX = CR3) and compare all ten; 0 if they always held, else the
 * round that broke. */
__asm__(
    ".text\n"
    "storm:\n"
    "  push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
    "  mov %rsi, %rcx\n"
    "  mov %cr3, %rax\n"
    "  mov 0(%rdi), %rbx\n mov 8(%rdi), %rbp\n mov 16(%rdi), %r8\n mov 24(%rdi), %r9\n"
    "  mov 32(%rdi), %r10\n mov 40(%rdi), %r11\n mov 48(%rdi), %r12\n mov 56(%rdi), %r13\n"
    "  mov 64(%rdi), %r14\n mov 72(%rdi), %r15\n"
    "1: cli\n sti\n mov %rax, %cr3\n"
    "  cmp 0(%rdi), %rbx\n jne 2f\n cmp 8(%rdi), %rbp\n jne 2f\n cmp 16(%rdi), %r8\n jne 2f\n"
    "  cmp 24(%rdi), %r9\n jne 2f\n cmp 32(%rdi), %r10\n jne 2f\n cmp 40(%rdi), %r11\n jne 2f\n"
    "  cmp 48(%rdi), %r12\n jne 2f\n cmp 56(%rdi), %r13\n jne 2f\n cmp 64(%rdi), %r14\n jne 2f\n"
    "  cmp 72(%rdi), %r15\n jne 2f\n"
    "  dec %rcx\n jnz 1b\n"
    "  xor %eax, %eax\n jmp 3f\n"
    "2: mov %rcx, %rax\n"
    "3: pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n"
    "  ret\n");
uint64_t storm(const uint64_t *patterns, uint64_t rounds);

static void on_tick(struct isr_frame *f)
{
    (void)f;
}

int main(void)
{
    static const uint64_t patterns[10] = {
        0x1111111111111111, 0x2222222222222222, 0x3333333333333333, 0x4444444444444444,
        0x5555555555555555, 0x6666666666666666, 0x7777777777777777, 0x8888888888888888,
        0x9999999999999999, 0xAAAAAAAAAAAAAAAA,
    };
    idt_init();
    idt_set_handler(0x40, on_tick);
    timer_start(0x40, 200);
    sti();
    uint32_t t0 = inl(GUEST_PORT_CLOCK_US);
    while (isr_count[0x40] < 300) {
        uint64_t broke = storm(patterns, 500);
        GUEST_ASSERT_EQ(broke, 0);
        if (inl(GUEST_PORT_CLOCK_US) - t0 > 15000000) {
            guest_printf("FAIL only %u ticks in 15 s\n", (unsigned)isr_count[0x40]);
            guest_exit(1);
        }
    }
    cli();
    timer_stop();
    GUEST_DONE();
}
