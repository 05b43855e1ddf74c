/* paging_remap.c - point one guest-virtual page at another guest-physical page, read and write
 * through it, then point it back: the guest's page tables decide what an address means, on
 * every backend (trap_emulate and dbt through the shadow MMU, vtx through nested paging). */
#include "paging.h"

static uint8_t page_a[PAGE_SIZE] PAGE_ALIGNED;
static uint8_t page_b[PAGE_SIZE] PAGE_ALIGNED;

int main(void)
{
    volatile uint8_t *a = page_a, *b = page_b;
    memset(page_a, 0xAA, PAGE_SIZE);
    memset(page_b, 0xBB, PAGE_SIZE);
    uint64_t va = (uint64_t)page_a;
    volatile uint64_t *pte = paging_pte(va);
    uint64_t identity = *pte;
    GUEST_ASSERT_EQ(a[100], 0xAA);

    *pte = paging_phys(page_b) | PTE_P | PTE_RW;
    invlpg(va);
    GUEST_ASSERT_EQ(a[100], 0xBB); /* page_a's address now shows page_b */
    a[200] = 0x5A;                 /* and a store through it lands in page_b */
    GUEST_ASSERT_EQ(b[200], 0x5A);

    *pte = identity;
    invlpg(va);
    GUEST_ASSERT_EQ(a[200], 0xAA); /* page_a itself was never written */
    GUEST_ASSERT_EQ(b[200], 0x5A);
    for (unsigned round = 0; round < 20; round++) { /* back and forth, each time exact */
        *pte = (round & 1 ? identity : paging_phys(page_b) | PTE_P | PTE_RW);
        invlpg(va);
        GUEST_ASSERT_EQ(a[7], round & 1 ? 0xAA : 0xBB);
    }
    GUEST_DONE();
}
