/* paging_recursive.c - a recursive (self-referencing) PML4 entry. The guest switches to a PML4
 * whose entry 0 points at itself and entry 1 at the platform's page directory: the walk of a
 * guest-space address now reads the PML4 twice (as PML4 and as PDPT) and still ends in the
 * identity map. One more self-reference, a PDE that points at the PML4, makes the PML4's own
 * entries the PTEs of that 2 MiB slot: page 0 there is the PML4 itself, page 1 the page
 * directory, and a store through that view rewrites the tables (Intel SDM vol. 3A 4.5). */
#include "paging.h"

static uint64_t pml4[512] PAGE_ALIGNED;
static uint8_t data[PAGE_SIZE] PAGE_ALIGNED;
#define SLOT 255 /* PD index of an unused 2 MiB slot (0x5FE00000, not RAM) */
#define VIEW (0x40000000ULL + ((uint64_t)SLOT << 21))

int main(void)
{
    uint64_t *old_pml4 = paging_table(READ_CR(3));
    volatile uint64_t *pd = paging_table(paging_table(old_pml4[0])[1]); /* PDPT[1] -> PD */
    pml4[0] = paging_phys(pml4) | PTE_P | PTE_RW;
    pml4[1] = paging_phys((const void *)pd) | PTE_P | PTE_RW;
    data[0] = 0x12;
    WRITE_CR(3, paging_phys(pml4));
    GUEST_ASSERT_EQ(PEEK(data[0]), 0x12); /* still the identity map */
    GUEST_ASSERT(PEEK(pml4[0]) & PTE_A);  /* used (as PML4E and as PDPTE) */

    pd[SLOT] = paging_phys(pml4) | PTE_P | PTE_RW;
    WRITE_CR(3, paging_phys(pml4));
    volatile uint64_t *view_pml4 = (volatile uint64_t *)VIEW;
    volatile uint64_t *view_pd = (volatile uint64_t *)(VIEW + PAGE_SIZE);
    GUEST_ASSERT_EQ(view_pml4[1], PEEK(pml4[1]));
    GUEST_ASSERT_EQ(view_pd[SLOT] & PTE_ADDR, paging_phys(pml4));
    GUEST_ASSERT_EQ(view_pd[0] & PTE_ADDR, 0x40000000ULL);

    /* through the view, entry 2 of the PML4 becomes a PTE mapping `data` at VIEW + 2 pages */
    data[5] = 0x77;
    view_pml4[2] = paging_phys(data) | PTE_P | PTE_RW;
    invlpg(VIEW + 2 * PAGE_SIZE);
    GUEST_ASSERT_EQ(PEEK(pml4[2]) & PTE_ADDR, paging_phys(data));
    GUEST_ASSERT_EQ(*(volatile uint8_t *)(VIEW + 2 * PAGE_SIZE + 5), 0x77);
    *(volatile uint8_t *)(VIEW + 2 * PAGE_SIZE + 6) = 0x66;
    GUEST_ASSERT_EQ(PEEK(data[6]), 0x66);
    GUEST_ASSERT(PEEK(pml4[2]) & PTE_D); /* the PML4 entry is the leaf there: dirty */

    view_pml4[2] = 0;
    pd[SLOT] = 0;
    WRITE_CR(3, paging_phys(old_pml4));
    GUEST_DONE();
}
