/* hlt_timer.c - STI; HLT sleeps until the next timer interrupt (the STI shadow guarantees the
 * wake-up is not lost), ten times. Passes everywhere. */
#include "guest.h"

static void on_timer(struct isr_frame *f)
{
    (void)f;
}

int main(void)
{
    idt_init();
    idt_set_handler(0x40, on_timer);
    timer_start(0x40, 2000);
    for (unsigned i = 1; i <= 10; i++) {
        sti_hlt();
        cli();
        GUEST_ASSERT(isr_count[0x40] >= i);
    }
    timer_stop();
    GUEST_DONE();
}
