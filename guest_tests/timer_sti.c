/* timer_sti.c - with the virtual IF set, the virtual timer's interrupts arrive through the
 * guest's IDT. Passes everywhere (STI is privileged: trap_emulate sees it). */
#include "guest.h"

static void on_timer(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->cs, GUEST_SEL_CODE);
    GUEST_ASSERT(f->rflags & RFLAGS_IF); /* interrupted with IF set */
}
static bool three(void)
{
    return isr_count[0x40] >= 3;
}

int main(void)
{
    idt_init();
    idt_set_handler(0x40, on_timer);
    timer_start(0x40, 1000);
    sti();
    GUEST_ASSERT(spin_until(three, 1000000));
    cli();
    timer_stop();
    GUEST_ASSERT(timer_ticks() >= 3);
    guest_printf("%u timer interrupts\n", (unsigned)isr_count[0x40]);
    GUEST_DONE();
}
