/* popf.c - POPF of an image with IF=1 enables interrupts (timer ticks arrive); POPF with IF=0
 * disables them again. Sensitive but unprivileged: at CPL 3 with IOPL 0, POPF silently ignores
 * IF (SDM vol. 2B POPF) and does not fault, so trap_emulate never sees it. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "trap_emulate", "", "exit:1 spin_until(two, 300000)",
    "POPF is sensitive but unprivileged: at CPL 3 a change of IF is silently ignored and "
    "nothing traps, so the virtual IF never changes (Popek-Goldberg violation)");

static void on_timer(struct isr_frame *f)
{
    (void)f;
}
static bool two(void)
{
    return isr_count[0x40] >= 2;
}

int main(void)
{
    idt_init();
    idt_set_handler(0x40, on_timer);
    cli();
    timer_start(0x40, 500);
    popf(pushf() | RFLAGS_IF);
    GUEST_ASSERT(spin_until(two, 300000));
    popf(pushf() & ~RFLAGS_IF);
    uint64_t seen = isr_count[0x40];
    uint32_t t0 = clock_us();
    while (clock_us() - t0 < 20000)
        GUEST_ASSERT_EQ(isr_count[0x40], seen);
    timer_stop();
    GUEST_DONE();
}
