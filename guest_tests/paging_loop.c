/* paging_loop.c - a loop in the tables: a PDE that points back at its own page directory. A
 * walk has four steps whatever the entries say, so the walk ends: the PD's entries act as the
 * PTEs of that 2 MiB slot, and its page i is the first 4 KiB of 2 MiB page i. No hang, no
 * host fault, the same result on every backend (Intel SDM vol. 3A 4.5). */
#include "paging.h"

#define SLOT 254
#define VIEW (0x40000000ULL + ((uint64_t)SLOT << 21))

int main(void)
{
    volatile uint64_t *pde = paging_pde(VIEW);
    volatile uint64_t *pd = pde - SLOT;
    *pde = paging_phys((const void *)pd) | PTE_P | PTE_RW;
    invlpg(VIEW);
    /* page 1 of the view = PD[1] as a PTE = the first page of the 2 MiB page at 0x40200000:
     * the guest image, whose first bytes are _start */
    extern char _start[];
    GUEST_ASSERT_EQ(*(volatile uint64_t *)(VIEW + PAGE_SIZE), *(uint64_t *)_start);
    /* page SLOT of the view is the PD itself */
    volatile uint64_t *view_pd = (volatile uint64_t *)(VIEW + SLOT * PAGE_SIZE);
    GUEST_ASSERT_EQ(view_pd[SLOT], *pde);
    GUEST_ASSERT_EQ(view_pd[2] & PTE_ADDR, 0x40400000ULL);
    *pde = 0;
    invlpg(VIEW);
    GUEST_DONE();
}
