/* hello.c - the smallest guest: console output (checked) and a clean exit. Passes everywhere. */
#include "guest.h"

/* vmlab check compares the console output too (whole lines, in order) */
GUEST_EXPECT_OUTPUT("*", "hello from a vmlab guest: 40 + 2 = 42, 0xbeef, ok");
GUEST_EXPECT_OUTPUT("*", "PASS");

int main(void)
{
    guest_printf("hello from a vmlab guest: %d + %d = %d, %#x, %s\n", 40, 2, 42, 0xbeef, "ok");
    GUEST_DONE();
}
