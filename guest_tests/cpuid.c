/* cpuid.c - CPUID shows vmlab's virtual CPU (vendor "vmlabVIRTCPU") on every backend, never
 * the host's. CPUID does not fault at CPL 3 unless the host offers CPUID faulting. */
#include "guest.h"

GUEST_EXPECT("trap_emulate", "pass", "cpuid_traps", "");
GUEST_EXPECT_XFAIL("trap_emulate", "", "exit:1 memcmp(vendor, ",
                   "this host has no CPUID faulting: CPUID runs natively and reveals the host CPU");

int main(void)
{
    uint32_t r[4];
    char vendor[13];
    cpuid(0, 0, r);
    memcpy(vendor, &r[1], 4);
    memcpy(vendor + 4, &r[3], 4);
    memcpy(vendor + 8, &r[2], 4);
    vendor[12] = 0;
    guest_printf("CPUID vendor: %s\n", vendor);
    GUEST_ASSERT(memcmp(vendor, "vmlabVIRTCPU", 12) == 0);
    cpuid(0x80000001, 0, r);
    GUEST_ASSERT(r[3] & (1u << 29)); /* long mode */
    GUEST_DONE();
}
