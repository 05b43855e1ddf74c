/* swapgs.c - SWAPGS exchanges GS.base and KERNEL_GS_BASE. Privileged: passes everywhere. */
#include "guest.h"

int main(void)
{
    wrmsr(MSR_GS_BASE, 0x40400000ULL);
    wrmsr(MSR_KERNEL_GS_BASE, 0x40500000ULL);
    __asm__ volatile("swapgs" ::: "memory");
    GUEST_ASSERT_EQ(rdmsr(MSR_GS_BASE), 0x40500000ULL);
    GUEST_ASSERT_EQ(rdmsr(MSR_KERNEL_GS_BASE), 0x40400000ULL);
    __asm__ volatile("swapgs" ::: "memory");
    GUEST_ASSERT_EQ(rdmsr(MSR_GS_BASE), 0x40400000ULL);
    GUEST_DONE();
}
