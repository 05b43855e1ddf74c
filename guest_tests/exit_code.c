/* exit_code.c - the value written to the exit port becomes vmlab's exit status. */
#include "guest.h"

GUEST_EXPECT_ENDING("exit:42");

int main(void)
{
    return 42;
}
