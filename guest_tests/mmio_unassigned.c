/* mmio_unassigned.c - a read of guest space where no device lives ends the run (MMIO). */
#include "guest.h"

GUEST_EXPECT_ENDING("mmio");

int main(void)
{
    return (int)*(volatile uint64_t *)GUEST_UNASSIGNED_MMIO;
}
