/* sgdt.c - after LGDT, SGDT returns exactly the guest's GDTR (base and limit).
 * Robin & Irvine: SGDT is sensitive but unprivileged. At CPL 3 it does not fault, so
 * trap_emulate cannot substitute the virtual GDTR: the guest sees the host's GDTR, or with UMIP
 * the host kernel's dummy value. Only if the host lets SGDT fault (UMIP without kernel
 * emulation) can trap_emulate emulate it. dbt rewrites it; vtx runs the guest at its own
 * CPL 0. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "trap_emulate", "!umip_faults", "exit:1 d.base == (uint64_t)gdt",
    "SGDT is sensitive but unprivileged: at CPL 3 it reads the host GDTR (or the host "
    "kernel UMIP dummy), not the guest's (Popek-Goldberg violation)");

int main(void)
{
    uint64_t *gdt = gdt_install(8);
    struct dtr d;
    sgdt(&d);
    GUEST_ASSERT_EQ(d.base, (uint64_t)gdt);
    GUEST_ASSERT_EQ(d.limit, 8 * 8 - 1);
    GUEST_DONE();
}
