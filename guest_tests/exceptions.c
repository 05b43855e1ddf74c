/* exceptions.c - #DE, #PF (CR2 and error code), #UD and #BP reach the guest's handlers with the
 * architecturally defined RIP. Passes everywhere. */
#include "guest.h"

GUEST_EXPECT_XFAIL("vtx", "kvm_pvm", "internal",
                   "this host's KVM is PVM (software, no VT-x/AMD-V): it cannot emulate INT3 for a "
                   "guest that is not PVM-aware (KVM internal error, emulation failure)");

extern char div_insn[], div_after[], pf_insn[], pf_after[], ud_insn[], ud_after[], bp_after[];

static void on_de(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->rip, (uint64_t)div_insn);
    f->rip = (uint64_t)div_after;
}
static void on_pf(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->rip, (uint64_t)pf_insn);
    GUEST_ASSERT_EQ(READ_CR(2), 0x1000);
    GUEST_ASSERT(f->error_code & 2);
    f->rip = (uint64_t)pf_after;
}
static void on_ud(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->rip, (uint64_t)ud_insn);
    f->rip = (uint64_t)ud_after;
}
static void on_bp(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->rip, (uint64_t)bp_after);
}

int main(void)
{
    idt_init();
    idt_set_handler(0, on_de);
    idt_set_handler(14, on_pf);
    idt_set_handler(6, on_ud);
    idt_set_handler(3, on_bp);
    __asm__ volatile("xorl %%edx, %%edx\n\tmovl $1, %%eax\n\txorl %%ecx, %%ecx\n\t"
                     "div_insn: divl %%ecx\n\tdiv_after:" ::
                         : "rax", "rcx", "rdx");
    __asm__ volatile("pf_insn: movb $1, (%0)\n\tpf_after:" ::"r"(0x1000ULL) : "memory");
    __asm__ volatile("ud_insn: ud2\n\tud_after:");
    __asm__ volatile("int3\n\tbp_after:");
    GUEST_ASSERT_EQ(isr_count[0], 1);
    GUEST_ASSERT_EQ(isr_count[14], 1);
    GUEST_ASSERT_EQ(isr_count[6], 1);
    GUEST_ASSERT_EQ(isr_count[3], 1);
    GUEST_DONE();
}
