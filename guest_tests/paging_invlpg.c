/* paging_invlpg.c - after a PTE changes, INVLPG guarantees the next access uses the new entry
 * (Intel SDM vol. 3A 4.10.4.1), for global pages too; toggling CR4.PGE flushes global
 * translations. Nothing is asserted before the invalidation: a stale entry may or may not be
 * used then. */
#include "paging.h"

static uint8_t pages[3][PAGE_SIZE] PAGE_ALIGNED;

int main(void)
{
    volatile uint64_t *p = (volatile uint64_t *)pages[0];
    pages[1][0] = 1;
    pages[2][0] = 2;
    uint64_t va = (uint64_t)pages[0];
    volatile uint64_t *pte = paging_pte(va);
    for (unsigned i = 0; i < 50; i++) {
        unsigned which = 1 + (i & 1);
        *pte = paging_phys(pages[which]) | PTE_P | PTE_RW;
        invlpg(va);
        GUEST_ASSERT_EQ(*p & 0xFF, which);
    }
    /* global pages: INVLPG still invalidates them */
    WRITE_CR(4, READ_CR(4) | CR4_PGE);
    for (unsigned i = 0; i < 10; i++) {
        unsigned which = 1 + (i & 1);
        *pte = paging_phys(pages[which]) | PTE_P | PTE_RW | PTE_G;
        invlpg(va);
        GUEST_ASSERT_EQ(*p & 0xFF, which);
    }
    /* and clearing CR4.PGE flushes every global translation */
    *pte = paging_phys(pages[1]) | PTE_P | PTE_RW | PTE_G;
    invlpg(va);
    GUEST_ASSERT_EQ(*p & 0xFF, 1); /* a global translation to pages[1], likely cached now */
    *pte = paging_phys(pages[2]) | PTE_P | PTE_RW | PTE_G;
    WRITE_CR(4, READ_CR(4) & ~CR4_PGE);
    GUEST_ASSERT_EQ(*p & 0xFF, 2);
    GUEST_DONE();
}
