/* ud_nohandler.c - the guest jumps into garbage (undecodable bytes FF FF): #UD with no handler
 * ends the run as an EXCEPTION exit naming vector 6. */
#include "guest.h"

GUEST_EXPECT_ENDING("exception:6");

static uint8_t garbage[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

int main(void)
{
    ((void (*)(void))garbage)();
    return 0;
}
