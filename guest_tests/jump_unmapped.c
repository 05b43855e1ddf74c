/* jump_unmapped.c - a jump to an address the guest's page tables do not map (0x10): #PF on
 * the instruction fetch, no handler, EXCEPTION exit with vector 14. */
#include "guest.h"

GUEST_EXPECT_ENDING("exception:14");

int main(void)
{
    ((void (*)(void))0x10)();
    return 0;
}
