/* hello.c - the smallest guest: console output and a clean exit. Passes everywhere. */
#include "guest.h"

int main(void)
{
    guest_printf("hello from a vmlab guest: %d + %d = %d, %#x, %s\n", 40, 2, 42, 0xbeef, "ok");
    GUEST_DONE();
}
