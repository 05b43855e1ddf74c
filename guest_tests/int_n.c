/* int_n.c - INT n, INT3 and INT 0x80 go through the guest's IDT with a frame showing CS with
 * RPL 0 and the RIP after the instruction. On trap_emulate INT 0x21 faults (#GP: the host's
 * gate has DPL 0) and INT 0x80 is caught by the system-call guard: all are emulated, so INT n
 * passes even though Robin & Irvine list it (it pushes CS, revealing the CPL). */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "vtx", "kvm_pvm", "internal",
    "this host's KVM is PVM (software, no VT-x/AMD-V): it cannot emulate INT n for a "
    "guest that is not PVM-aware (KVM internal error, emulation failure)");

extern char after_int21[], after_int3[], after_int80[];

static void on_21(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->cs, GUEST_SEL_CODE);
    GUEST_ASSERT_EQ(f->rip, (uint64_t)after_int21);
}
static void on_3(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->rip, (uint64_t)after_int3);
}
static void on_80(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->rip, (uint64_t)after_int80);
}

int main(void)
{
    idt_init();
    idt_set_handler(0x21, on_21);
    idt_set_handler(3, on_3);
    idt_set_handler(0x80, on_80);
    __asm__ volatile("int $0x21\n\tafter_int21:" ::: "memory");
    __asm__ volatile("int3\n\tafter_int3:" ::: "memory");
    __asm__ volatile("int $0x80\n\tafter_int80:" ::: "memory");
    GUEST_ASSERT_EQ(isr_count[0x21], 1);
    GUEST_ASSERT_EQ(isr_count[3], 1);
    GUEST_ASSERT_EQ(isr_count[0x80], 1);
    GUEST_DONE();
}
