/* msr.c - RDMSR/WRMSR on the MSRs a small kernel touches; an unknown MSR raises #GP.
 * Privileged: passes everywhere. */
#include "guest.h"

GUEST_EXPECT_XFAIL("vtx", "kvm_pvm", "exception:13",
                   "this host's KVM is PVM (software, no VT-x/AMD-V): it refuses WRMSR to TSC_AUX "
                   "with #GP although vmlab's CPUID advertises RDTSCP");

extern char bad_rdmsr[], bad_rdmsr_after[];

static void on_gp(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->rip, (uint64_t)bad_rdmsr);
    f->rip = (uint64_t)bad_rdmsr_after;
}

int main(void)
{
    /* Reset values every backend must give (SDM vol. 3A 11.12.4 for PAT; vmlab's virtual CPU
     * sets IA32_MISC_ENABLE to "fast strings" only, and vtx passes both to KVM). */
    GUEST_ASSERT_EQ(rdmsr(MSR_PAT), 0x0007040600070406ULL);
    GUEST_ASSERT_EQ(rdmsr(MSR_MISC_ENABLE), 1);
    wrmsr(MSR_MTRR_DEF_TYPE, 0xC06); /* MTRRs and fixed MTRRs enabled, default WB */
    GUEST_ASSERT_EQ(rdmsr(MSR_MTRR_DEF_TYPE), 0xC06);
    wrmsr(MSR_LSTAR, 0xffffffff81000000ULL);
    GUEST_ASSERT_EQ(rdmsr(MSR_LSTAR), 0xffffffff81000000ULL);
    wrmsr(MSR_STAR, 0x0023000800000000ULL);
    GUEST_ASSERT_EQ(rdmsr(MSR_STAR), 0x0023000800000000ULL);
    wrmsr(MSR_KERNEL_GS_BASE, 0x40300000ULL);
    GUEST_ASSERT_EQ(rdmsr(MSR_KERNEL_GS_BASE), 0x40300000ULL);
    wrmsr(MSR_TSC_AUX, 7);
    GUEST_ASSERT_EQ(rdmsr(MSR_TSC_AUX), 7);
    GUEST_ASSERT(rdmsr(MSR_EFER) & (1 << 10)); /* LMA */
    idt_init();
    idt_set_handler(13, on_gp);
    uint32_t lo, hi;
    __asm__ volatile("bad_rdmsr: rdmsr\n\tbad_rdmsr_after:" : "=a"(lo), "=d"(hi) : "c"(0x12345));
    GUEST_ASSERT_EQ(isr_count[13], 1);
    GUEST_DONE();
}
