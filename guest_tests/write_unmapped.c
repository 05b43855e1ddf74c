/* write_unmapped.c - a store to unmapped memory (0x1000): #PF, no handler, EXCEPTION exit. */
#include "guest.h"

GUEST_EXPECT_ENDING("exception:14");

int main(void)
{
    *(volatile uint32_t *)0x1000 = 1;
    return 0;
}
