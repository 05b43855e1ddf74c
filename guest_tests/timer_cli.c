/* timer_cli.c - with the virtual IF cleared by CLI no interrupt is taken (20 ms, 40 periods),
 * after STI they arrive: CLI/STI gate something real. Passes everywhere. */
#include "guest.h"

static void on_timer(struct isr_frame *f)
{
    (void)f;
}
static bool one(void)
{
    return isr_count[0x40] >= 1;
}

int main(void)
{
    idt_init();
    idt_set_handler(0x40, on_timer);
    sti(); /* IF set first: the CLI below must clear it (the guest may start with IF clear) */
    cli();
    timer_start(0x40, 500);
    uint32_t t0 = clock_us();
    while (clock_us() - t0 < 20000)
        GUEST_ASSERT_EQ(isr_count[0x40], 0);
    sti();
    GUEST_ASSERT(spin_until(one, 1000000));
    cli();
    timer_stop();
    GUEST_DONE();
}
