/* verw.c - VERW: the guest's data segment 0x10 is writable at CPL 0 (ZF=1), its code segment
 * 0x08 is not (ZF=0). Sensitive but unprivileged at CPL 3. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "vtx", "kvm_pvm", "internal",
    "this host's KVM is PVM (software, no VT-x/AMD-V): the guest runs deprivileged and "
    "PVM cannot emulate VERW (KVM internal error)");

GUEST_EXPECT_XFAIL("trap_emulate", "", "exit:1 verw(GUEST_SEL_DATA) == RFLAGS_ZF",
                   "VERW does not fault at CPL 3: it checks the host's descriptor against CPL 3 "
                   "(Popek-Goldberg violation)");

static uint64_t verw(uint64_t sel)
{
    uint64_t flags;
    __asm__ volatile("verw %w1\n\tpushfq\n\tpopq %0" : "=r"(flags) : "r"(sel));
    return flags & RFLAGS_ZF;
}

int main(void)
{
    GUEST_ASSERT_EQ(verw(GUEST_SEL_DATA), RFLAGS_ZF);
    GUEST_ASSERT_EQ(verw(GUEST_SEL_CODE), 0);
    GUEST_DONE();
}
