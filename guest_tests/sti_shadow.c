/* sti_shadow.c - the STI interrupt shadow: with an interrupt pending, STI sets IF but the
 * instruction after it still runs before the interrupt is delivered (Intel SDM vol. 2B STI,
 * vol. 3A 6.8.3). This is what makes `sti; hlt` safe: the HLT is reached before the wake-up
 * interrupt, never after it. Passes everywhere; an emulated STI that forgets the shadow takes
 * the interrupt one instruction early. */
#include "guest.h"

GUEST_EXPECT_XFAIL_OR_PASS(
    "vtx", "qemu_tcg", "exit:1 flag_seen_by_isr == 1",
    "nested test only: the CPU under kvm_amd is QEMU TCG, and in some runs the pending "
    "interrupt arrives inside the STI shadow (2-3 of 4 runs on an Intel Xeon host, none in "
    "earlier ones); vmlab injects only when KVM reports the guest ready "
    "(ready_for_interrupt_injection and if_flag, then KVM_INTERRUPT), so the shadow is lost "
    "below vmlab - in TCG or nested KVM, not on AMD-V hardware");

static volatile uint64_t flag, flag_seen_by_isr = 99;

static void on_timer(struct isr_frame *f)
{
    (void)f;
    if (flag_seen_by_isr == 99)
        flag_seen_by_isr = flag;
}

static bool delivered(void)
{
    return flag_seen_by_isr != 99;
}

int main(void)
{
    idt_init();
    idt_set_handler(0x40, on_timer);
    cli();
    timer_start(0x40, 100);
    /* IF clear for 2 ms: a tick is pending when STI comes */
    uint32_t t0 = clock_us();
    while (clock_us() - t0 < 2000)
        GUEST_ASSERT_EQ(isr_count[0x40], 0);
    flag = 0;
    __asm__ volatile("sti\n\t"
                     "movq $1, %0" /* in the shadow: runs before the pending interrupt */
                     : "=m"(flag)::"memory");
    GUEST_ASSERT(spin_until(delivered, 1000000));
    cli();
    timer_stop();
    GUEST_ASSERT_EQ(flag_seen_by_isr, 1);
    GUEST_DONE();
}
