/* pushf.c - PUSHF shows the guest's interrupt flag: 0 after CLI, 1 after STI.
 * Sensitive but unprivileged: at CPL 3 PUSHF pushes the real RFLAGS, where IF is always 1. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "trap_emulate", "", "exit:1 pushf() & RFLAGS_IF == 0",
    "PUSHF is sensitive but unprivileged: at CPL 3 it pushes the real RFLAGS (IF always "
    "1), not the virtual IF (Popek-Goldberg violation)");

int main(void)
{
    cli();
    GUEST_ASSERT_EQ(pushf() & RFLAGS_IF, 0);
    GUEST_ASSERT_EQ((pushf() >> 12) & 3, 0); /* IOPL as the guest set it: 0 */
    sti();
    GUEST_ASSERT_EQ(pushf() & RFLAGS_IF, RFLAGS_IF);
    cli();
    GUEST_DONE();
}
