/* popf_window.c - POPF that sets IF opens the interrupt window at once (no shadow, unlike
 * STI): an interrupt pending while IF was clear is delivered after the POPF and before the
 * next instruction, here a CLI that closes the window again (Intel SDM vol. 3A 6.8.1). A
 * translator that recognizes interrupts only at its next block boundary delivers it after
 * the CLI - too late - and the guest sees none. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "trap_emulate", "", "exit:1 popf_window.c",
    "POPF is sensitive but unprivileged: at CPL 3 a change of IF is silently ignored and "
    "nothing traps, so the virtual IF never changes (Popek-Goldberg violation)");

GUEST_EXPECT_XFAIL("vtx", "kvm_pvm", "exit:1 assertion failed: ticks > before",
                   "PVM (software virtualization) opens the interrupt window only at the guest's "
                   "next exit, not at the instruction boundary: the pending tick arrives after the "
                   "CLI (the nested run's kvm_amd delivers it in the window)");

static volatile uint64_t ticks;

static void on_timer(struct isr_frame *f)
{
    (void)f;
    ticks++;
}

int main(void)
{
    idt_init();
    idt_set_handler(0x40, on_timer);
    cli();
    timer_start(0x40, 100);
    uint64_t with_if = pushf() | RFLAGS_IF;
    for (int round = 0; round < 3; round++) {
        uint64_t before = ticks;
        uint32_t t0 = clock_us();
        while (clock_us() - t0 < 1000)
            GUEST_ASSERT_EQ(ticks, before);
        __asm__ volatile("push %0\n\tpopfq\n\tcli" : : "r"(with_if) : "memory");
        GUEST_ASSERT(ticks > before); /* delivered before the CLI */
    }
    timer_stop();
    GUEST_DONE();
}
