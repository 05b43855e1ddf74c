/* cache_tlb.c - INVLPG, WBINVD and CLTS complete without architectural side effects the guest
 * could miss (memory stays intact). Privileged: passes everywhere. */
#include "guest.h"

static volatile uint64_t cell = 0x1234;

int main(void)
{
    __asm__ volatile("invlpg (%0)" ::"r"(&cell) : "memory");
    __asm__ volatile("wbinvd" ::: "memory");
    __asm__ volatile("clts");
    GUEST_ASSERT_EQ(cell, 0x1234);
    GUEST_ASSERT_EQ(READ_CR(0) & 8, 0);
    GUEST_DONE();
}
