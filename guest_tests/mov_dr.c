/* mov_dr.c - MOV to/from the debug registers: privileged, passes everywhere. */
#include "guest.h"

int main(void)
{
    WRITE_DR(0, 0x40201000ULL);
    WRITE_DR(1, 0x40202000ULL);
    WRITE_DR(2, 0x40203000ULL);
    WRITE_DR(3, 0x40204000ULL);
    GUEST_ASSERT_EQ(READ_DR(0), 0x40201000ULL);
    GUEST_ASSERT_EQ(READ_DR(1), 0x40202000ULL);
    GUEST_ASSERT_EQ(READ_DR(2), 0x40203000ULL);
    GUEST_ASSERT_EQ(READ_DR(3), 0x40204000ULL);
    WRITE_DR(7, 0x400); /* no breakpoint enabled */
    GUEST_ASSERT_EQ(READ_DR(7) & 0xFF, 0);
    GUEST_DONE();
}
