/* str.c - STR returns the guest's task register (0x18 at reset in the guest model).
 * Sensitive but unprivileged: at CPL 3 trap_emulate lets the guest see the host's TR. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "trap_emulate", "!umip_faults", "exit:1 tr == GUEST_SEL_TSS",
    "STR is sensitive but unprivileged: at CPL 3 it returns the host TR (or the host "
    "kernel UMIP dummy), not the guest's (Popek-Goldberg violation)");

int main(void)
{
    uint64_t tr = ~0ULL;
    __asm__ volatile("str %0" : "=r"(tr));
    GUEST_ASSERT_EQ(tr, GUEST_SEL_TSS);
    GUEST_DONE();
}
