/* paging_slp_exit.c - second-level permissions as exits. The guest asks the VMM
 * (PORT_SLP_CONTROL) to make one of its guest-physical pages read-only, reads it (no exit) and
 * writes it: the write is an exit to the VMM (SLP_VIOLATION, what an EPT/NPT violation is to
 * a hypervisor), whose run loop counts it, lifts the restriction and lets the write complete;
 * the next write to the page costs nothing. A no-access page: a read exits the same way. The
 * guest checks the count and the exact address (PORT_SLP_EXITS, PORT_SLP_LAST_GPA). vtx: a
 * KVM_MEM_READONLY memory slot and a hole in the slots. */
#include "paging.h"

static uint8_t pages[2][PAGE_SIZE] PAGE_ALIGNED;

int main(void)
{
    volatile uint8_t *ro = pages[0], *none = pages[1];
    ro[8] = 1;
    none[0] = 5;
    outl(GUEST_PORT_SLP_CONTROL, (uint32_t)paging_phys(pages[0]) | SLP_READ_ONLY);
    GUEST_ASSERT_EQ(ro[8], 1); /* reading a read-only page is no violation */
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_EXITS), 0);
    ro[9] = 2; /* exit; the VMM lifts the restriction; the store completes */
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_EXITS), 1);
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_LAST_GPA), paging_phys(pages[0]) + 9);
    GUEST_ASSERT_EQ(ro[9], 2);
    ro[10] = 3; /* lifted: no exit */
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_EXITS), 1);
    GUEST_ASSERT_EQ(ro[10], 3);

    outl(GUEST_PORT_SLP_CONTROL, (uint32_t)paging_phys(pages[1]) | SLP_NO_ACCESS);
    GUEST_ASSERT_EQ(none[0], 5); /* a read exits too, and completes */
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_EXITS), 2);
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_LAST_GPA), paging_phys(pages[1]));
    /* protected again: each violation is one more exit */
    outl(GUEST_PORT_SLP_CONTROL, (uint32_t)paging_phys(pages[0]) | SLP_READ_ONLY);
    for (unsigned i = 0; i < 5; i++) {
        ro[100] = (uint8_t)i;
        outl(GUEST_PORT_SLP_CONTROL, (uint32_t)paging_phys(pages[0]) | SLP_READ_ONLY);
    }
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SLP_EXITS), 7);
    GUEST_ASSERT_EQ(ro[100], 4);
    GUEST_DONE();
}
