/* verr.c - VERR: the guest's code segment 0x08 is readable at CPL 0 (ZF=1), its TSS 0x18 is
 * not a readable segment (ZF=0). Sensitive but unprivileged: at CPL 3 VERR checks the host's
 * descriptors with CPL 3. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "vtx", "kvm_pvm", "internal",
    "this host's KVM is PVM (software, no VT-x/AMD-V): the guest runs deprivileged and "
    "PVM cannot emulate VERR (KVM internal error)");

GUEST_EXPECT_XFAIL("trap_emulate", "", "exit:1 verr(GUEST_SEL_CODE) == RFLAGS_ZF",
                   "VERR does not fault at CPL 3: it checks the host's descriptor against CPL 3 "
                   "(Popek-Goldberg violation)");

static uint64_t verr(uint64_t sel)
{
    uint64_t flags;
    __asm__ volatile("verr %w1\n\tpushfq\n\tpopq %0" : "=r"(flags) : "r"(sel));
    return flags & RFLAGS_ZF;
}

int main(void)
{
    GUEST_ASSERT_EQ(verr(GUEST_SEL_CODE), RFLAGS_ZF);
    GUEST_ASSERT_EQ(verr(GUEST_SEL_DATA), RFLAGS_ZF);
    GUEST_ASSERT_EQ(verr(GUEST_SEL_TSS), 0);
    GUEST_DONE();
}
