/* paging_write_protect.c - a store to a read-only page: with CR0.WP = 1 a supervisor store
 * faults (#PF, P = 1, W/R = 1, CR2 = the address) and changes nothing; with CR0.WP = 0 the
 * same store goes through and sets the dirty flag (Intel SDM vol. 3A 4.6.1). */
#include "paging.h"

static uint8_t page[PAGE_SIZE] PAGE_ALIGNED;

int main(void)
{
    idt_init();
    idt_set_handler(14, paging_on_pf);
    uint64_t va = (uint64_t)page;
    volatile uint64_t *p = (volatile uint64_t *)page;
    p[1] = 111;
    volatile uint64_t *pte = paging_pte(va);
    *pte = paging_phys(page) | PTE_P; /* read-only, A and D clear */
    invlpg(va);
    GUEST_ASSERT(READ_CR(0) & CR0_WP);
    GUEST_ASSERT_EQ(p[1], 111);
    GUEST_ASSERT(!paging_try_store(va + 8, 222));
    GUEST_ASSERT_EQ(pf_error & 0x1F, PF_P | PF_W);
    GUEST_ASSERT_EQ(pf_cr2, va + 8);
    GUEST_ASSERT_EQ(p[1], 111);
    GUEST_ASSERT(!(*pte & PTE_D)); /* a faulting store does not dirty the page */

    WRITE_CR(0, READ_CR(0) & ~CR0_WP);
    GUEST_ASSERT(paging_try_store(va + 8, 333));
    GUEST_ASSERT_EQ(p[1], 333);
    GUEST_ASSERT(*pte & PTE_D);

    WRITE_CR(0, READ_CR(0) | CR0_WP); /* and protected again */
    GUEST_ASSERT(!paging_try_store(va + 16, 444));
    GUEST_ASSERT_EQ(pf_count, 2);
    GUEST_ASSERT_EQ(p[1], 333);
    GUEST_DONE();
}
