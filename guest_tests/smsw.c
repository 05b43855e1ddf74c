/* smsw.c - after the guest sets CR0.TS (MOV to CR0, privileged), SMSW shows it. SMSW is
 * sensitive but unprivileged: at CPL 3 it reads the host's CR0 (or the kernel's UMIP dummy). */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "trap_emulate", "!umip_faults", "exit:1 msw & 0x8 == 0x8",
    "SMSW is sensitive but unprivileged: at CPL 3 it reads the host CR0 (or the host "
    "kernel UMIP dummy), not the guest's virtual CR0 (Popek-Goldberg violation)");

int main(void)
{
    WRITE_CR(0, READ_CR(0) | 8); /* TS */
    uint64_t msw = 0;
    __asm__ volatile("smsw %0" : "=r"(msw));
    __asm__ volatile("clts");
    GUEST_ASSERT_EQ(msw & 0x8, 0x8);
    GUEST_ASSERT_EQ(msw & 0x1, 0x1); /* PE */
    GUEST_DONE();
}
