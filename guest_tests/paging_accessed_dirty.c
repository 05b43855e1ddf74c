/* paging_accessed_dirty.c - the "hardware" sets the accessed flag in every entry a translation
 * uses and the dirty flag in the leaf on the first store (Intel SDM vol. 3A 4.8). Only what is
 * guaranteed is asserted: after a read through a fresh PTE A = 1 and D = 0 (nothing but a
 * store sets D); after a store D = 1; an entry is never cleared by the CPU. */
#include "paging.h"

static uint8_t pages[2][PAGE_SIZE] PAGE_ALIGNED;
static uint8_t big[LARGE_PAGE_SIZE] __attribute__((aligned(LARGE_PAGE_SIZE)));

int main(void)
{
    uint64_t va = (uint64_t)pages[0];
    volatile uint64_t *pte = paging_pte(va);
    volatile uint64_t *pde = paging_pde(va);
    *pte = paging_phys(pages[1]) | PTE_P | PTE_RW; /* fresh: A = D = 0 */
    *pde &= ~PTE_A;
    invlpg(va);
    GUEST_ASSERT_EQ(*(volatile uint32_t *)(va + 12), 0);
    GUEST_ASSERT(*pte & PTE_A);
    GUEST_ASSERT(!(*pte & PTE_D));
    GUEST_ASSERT(*pde & PTE_A);    /* the PDE was used too */
    GUEST_ASSERT(!(*pde & PTE_D)); /* a non-leaf entry has no dirty flag */
    *(volatile uint32_t *)(va + 12) = 1;
    GUEST_ASSERT(*pte & PTE_D);
    GUEST_ASSERT(!(*pde & PTE_D));

    /* clear both and store first: both set by the store */
    *pte = paging_phys(pages[1]) | PTE_P | PTE_RW;
    invlpg(va);
    *(volatile uint32_t *)(va + 16) = 2;
    GUEST_ASSERT_EQ(*pte & (PTE_A | PTE_D), PTE_A | PTE_D);

    /* a 2 MiB page: its PDE is the leaf */
    uint64_t bva = (uint64_t)big;
    volatile uint64_t *bpde = paging_pde(bva);
    GUEST_ASSERT(*bpde & PTE_PS);
    *bpde &= ~(PTE_A | PTE_D);
    invlpg(bva);
    GUEST_ASSERT_EQ(*(volatile uint8_t *)(bva + 0x12345), 0);
    GUEST_ASSERT(*bpde & PTE_A);
    GUEST_ASSERT(!(*bpde & PTE_D));
    *(volatile uint8_t *)(bva + 0x1FFFFF) = 3;
    GUEST_ASSERT(*bpde & PTE_D);
    GUEST_DONE();
}
