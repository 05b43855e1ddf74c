/* paging_edit_alias.c - page tables edited through an alias: a second virtual address maps
 * the page table itself, PTEs are rewritten through it, and the translations follow (after
 * INVLPG). Then the alias rewrites its own PTE, which lives in the very page it writes. */
#include "paging.h"

static uint8_t pages[3][PAGE_SIZE] PAGE_ALIGNED;
static uint8_t window_slot[PAGE_SIZE] PAGE_ALIGNED; /* becomes the alias of the page table */

int main(void)
{
    pages[1][0] = 1;
    pages[2][0] = 2;
    uint64_t va = (uint64_t)pages[0];
    uint64_t alias = (uint64_t)window_slot;
    volatile uint64_t *pte = paging_pte(va); /* va and alias share this page table */
    volatile uint64_t *pt = pte - paging_index(va, 1);
    GUEST_ASSERT(paging_table(*paging_pde(alias)) == (uint64_t *)pt);
    pt[paging_index(alias, 1)] = paging_phys((const void *)pt) | PTE_P | PTE_RW;
    invlpg(alias);
    volatile uint64_t *pt_view = (volatile uint64_t *)alias;
    GUEST_ASSERT_EQ(pt_view[paging_index(va, 1)], *pte); /* the table, seen through the alias */
    for (unsigned i = 0; i < 40; i++) {
        unsigned which = 1 + (i & 1);
        pt_view[paging_index(va, 1)] = paging_phys(pages[which]) | PTE_P | PTE_RW;
        invlpg(va);
        GUEST_ASSERT_EQ(*(volatile uint8_t *)va, which);
        GUEST_ASSERT_EQ(*pte & PTE_ADDR, paging_phys(pages[which])); /* same memory */
    }
    /* the alias points itself elsewhere: the store goes through the old translation, the
     * next access (after INVLPG) through the new one */
    pt_view[paging_index(alias, 1)] = paging_phys(pages[2]) | PTE_P | PTE_RW;
    invlpg(alias);
    GUEST_ASSERT_EQ(*(volatile uint8_t *)alias, 2);
    GUEST_ASSERT_EQ(pt[paging_index(alias, 1)] & PTE_ADDR, paging_phys(pages[2]));
    GUEST_DONE();
}
