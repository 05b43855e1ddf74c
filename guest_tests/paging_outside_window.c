/* paging_outside_window.c - the guest maps RAM at a linear address 512 GiB up (PML4[1]) and
 * reads through it. Architecturally fine, and vtx (nested paging) does it. trap_emulate and
 * dbt run the guest's accesses in the host process, where only the guest-virtual window
 * (0x40000000-0x60000000) can hold guest mappings: the run must end with a clear error naming
 * the address (internal error 22), never read host memory or something else instead. */
#include "paging.h"

GUEST_EXPECT_XFAIL("trap_emulate", "", "internal",
                   "the host process can hold guest mappings only inside the guest-virtual window "
                   "0x40000000-0x60000000: a clear error naming the address, by design");
GUEST_EXPECT_XFAIL("dbt", "", "internal",
                   "the host process can hold guest mappings only inside the guest-virtual window "
                   "0x40000000-0x60000000: a clear error naming the address, by design");

static uint64_t pdpt[512] PAGE_ALIGNED, pd[512] PAGE_ALIGNED;
static uint8_t page[PAGE_SIZE] PAGE_ALIGNED;
#define FAR 0x8000000000ULL /* PML4 index 1 */

int main(void)
{
    page[123] = 0x5C;
    uint64_t big = paging_phys(page) & ~(LARGE_PAGE_SIZE - 1); /* its 2 MiB page */
    pd[0] = big | PTE_P | PTE_RW | PTE_PS;
    pdpt[0] = paging_phys(pd) | PTE_P | PTE_RW;
    paging_table(READ_CR(3))[1] = paging_phys(pdpt) | PTE_P | PTE_RW;
    WRITE_CR(3, READ_CR(3));
    volatile uint8_t *far = (volatile uint8_t *)(FAR + (paging_phys(page) - big));
    GUEST_ASSERT_EQ(far[123], 0x5C);
    far[124] = 0x5D;
    GUEST_ASSERT_EQ(PEEK(page[124]), 0x5D);
    GUEST_DONE();
}
