/* lgdt_lidt.c - LGDT and LIDT take effect: an exception is delivered through the guest's new
 * IDT, whose gate selector is looked up in the guest's new GDT. Privileged: passes everywhere. */
#include "guest.h"

GUEST_EXPECT_XFAIL("vtx", "kvm_pvm", "internal",
                   "this host's KVM is PVM (software, no VT-x/AMD-V): it cannot emulate INT3 for a "
                   "guest that is not PVM-aware (KVM internal error, emulation failure)");

static void on_bp(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->cs, GUEST_SEL_CODE);
}

int main(void)
{
    uint64_t *gdt = gdt_install(8);
    gdt[5] = gdt_descriptor(0, 0xFFFFF, 0x93, 0xC); /* an extra data segment */
    idt_init();
    idt_set_handler(3, on_bp);
    __asm__ volatile("int3");
    GUEST_ASSERT_EQ(isr_count[3], 1);
    GUEST_DONE();
}
