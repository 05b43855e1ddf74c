/* paging_alias.c - two guest-virtual pages mapping one guest-physical page: a store through
 * either is seen through the other at once (one physical page, whatever the TLB holds). */
#include "paging.h"

static uint8_t page[PAGE_SIZE] PAGE_ALIGNED;
static uint8_t alias_slot[PAGE_SIZE] PAGE_ALIGNED; /* its address becomes the alias */

int main(void)
{
    volatile uint64_t *direct = (volatile uint64_t *)page;
    volatile uint64_t *alias = (volatile uint64_t *)alias_slot;
    volatile uint64_t *pte = paging_pte((uint64_t)alias_slot);
    *pte = paging_phys(page) | PTE_P | PTE_RW;
    invlpg((uint64_t)alias_slot);
    for (uint64_t i = 0; i < 512; i++) {
        direct[i] = 0x1111111100000000ULL | i;
        GUEST_ASSERT_EQ(alias[i], 0x1111111100000000ULL | i);
        alias[i] = 0x2222222200000000ULL | i;
        GUEST_ASSERT_EQ(direct[i], 0x2222222200000000ULL | i);
    }
    /* a read-only alias of a writable page: reads see the page, a store faults there only */
    idt_init();
    idt_set_handler(14, paging_on_pf);
    *pte = paging_phys(page) | PTE_P;
    invlpg((uint64_t)alias_slot);
    GUEST_ASSERT_EQ(alias[3], 0x2222222200000003ULL);
    GUEST_ASSERT(!paging_try_store((uint64_t)&alias[3], 7));
    GUEST_ASSERT_EQ(pf_error & 0x1F, PF_P | PF_W);
    GUEST_ASSERT_EQ(pf_cr2, (uint64_t)&alias[3]);
    GUEST_ASSERT(paging_try_store((uint64_t)&direct[3], 7));
    GUEST_ASSERT_EQ(alias[3], 7);
    GUEST_DONE();
}
