/* lar.c - LAR on the guest's code selector 0x08 returns its access rights with ZF=1, as at
 * CPL 0. Sensitive but unprivileged: at CPL 3 LAR reads the host's GDT with the host CPL. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "vtx", "kvm_pvm", "internal",
    "this host's KVM is PVM (software, no VT-x/AMD-V): the guest runs deprivileged and "
    "PVM cannot emulate LAR (KVM internal error)");

GUEST_EXPECT_XFAIL(
    "trap_emulate", "", "exit:1 flags & RFLAGS_ZF",
    "LAR does not fault at CPL 3: it checks the host's descriptor against CPL 3, so the "
    "guest's CPL-0 view cannot be emulated (Popek-Goldberg violation)");

int main(void)
{
    uint64_t ar = 0, flags;
    __asm__ volatile("lar %2, %0\n\tpushfq\n\tpopq %1" : "=r"(ar), "=r"(flags) : "r"(0x08ULL));
    GUEST_ASSERT(flags & RFLAGS_ZF);
    /* P DPL0 S code exec/read accessed, L, G; limit bits 19:16 masked (SDM vol. 2A LAR) */
    GUEST_ASSERT_EQ(ar, 0x00A09B00ULL);
    GUEST_DONE();
}
