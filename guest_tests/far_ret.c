/* far_ret.c - RETFQ to 0x08:label lands with CS = 0x08. At CPL 3 a far return to RPL 0 faults
 * (returning to a more privileged level) and is emulated; the native CS the guest reads
 * afterwards is the host's (Robin & Irvine). */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "trap_emulate", "", "exit:1 cs == GUEST_SEL_CODE",
    "far RET is sensitive: its privilege checks use the host CPL; the guest then reads "
    "the host's CS (Popek-Goldberg violation)");

int main(void)
{
    uint64_t cs = 0;
    __asm__ volatile("pushq $0x08\n\t"
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     ".byte 0x48, 0xcb\n\t" /* RETFQ */
                     "ud2\n"
                     "1: movq %%cs, %0"
                     : "=r"(cs)
                     :
                     : "rax", "memory");
    GUEST_ASSERT_EQ(cs, GUEST_SEL_CODE);
    GUEST_DONE();
}
