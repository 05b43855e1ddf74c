/* loop_forever.c - a guest that never ends: the time budget stops it (BUDGET), no hang. */
#include "guest.h"

GUEST_EXPECT_ENDING("budget");
GUEST_EXPECT_TIMEOUT("1");

int main(void)
{
    for (;;)
        __asm__ volatile("" ::: "memory");
}
