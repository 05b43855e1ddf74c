/* lsl.c - LSL on the guest's data selector 0x10 returns the byte-granular limit 0xFFFFFFFF
 * with ZF=1. Sensitive but unprivileged: at CPL 3 LSL reads the host's descriptor. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "vtx", "kvm_pvm", "internal",
    "this host's KVM is PVM (software, no VT-x/AMD-V): the guest runs deprivileged and "
    "PVM cannot emulate LSL (KVM internal error)");

GUEST_EXPECT_XFAIL(
    "trap_emulate", "", "exit:1 flags & RFLAGS_ZF",
    "LSL does not fault at CPL 3: it checks the host's descriptor against CPL 3, so the "
    "guest's CPL-0 view cannot be emulated (Popek-Goldberg violation)");

int main(void)
{
    uint64_t limit = 0, flags;
    __asm__ volatile("lsl %2, %0\n\tpushfq\n\tpopq %1" : "=r"(limit), "=r"(flags) : "r"(0x10ULL));
    GUEST_ASSERT(flags & RFLAGS_ZF);
    GUEST_ASSERT_EQ(limit, 0xFFFFFFFFULL);
    GUEST_DONE();
}
