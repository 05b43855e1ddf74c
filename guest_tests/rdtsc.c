/* rdtsc.c - the guest's TSC is its own: it starts at 0 at reset, so the first read is small
 * (< 2^34, seconds of virtual time), and it increases. RDTSC does not fault at CPL 3 unless
 * the host sets CR4.TSD for us (PR_SET_TSC); natively the guest reads the host's huge TSC. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "vtx", "kvm_pvm", "exit:1 a < (1ULL << 34)",
    "this host's KVM is PVM (software, no VT-x/AMD-V): the guest TSC is not reset to "
    "0 at vCPU creation");

GUEST_EXPECT("trap_emulate", "pass", "rdtsc_traps", "");
GUEST_EXPECT_XFAIL("trap_emulate", "", "exit:1 a < (1ULL << 34)",
                   "this host does not let RDTSC fault: the guest reads the host TSC");

int main(void)
{
    uint64_t a = rdtsc();
    uint64_t b = rdtsc();
    guest_printf("TSC %llu then %llu\n", (unsigned long long)a, (unsigned long long)b);
    GUEST_ASSERT(a < (1ULL << 34));
    GUEST_ASSERT(b > a);
    GUEST_DONE();
}
