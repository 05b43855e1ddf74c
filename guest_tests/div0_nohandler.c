/* div0_nohandler.c - a divide error with no guest handler ends the run as an EXCEPTION exit
 * naming #DE (via the platform's default IDT), on every backend. */
#include "guest.h"

GUEST_EXPECT_ENDING("exception:0");

int main(void)
{
    volatile unsigned zero = 0;
    return (int)(1000u / zero);
}
