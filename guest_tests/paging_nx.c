/* paging_nx.c - execute-disable: with EFER.NXE = 1 a fetch from a page whose PTE has XD set
 * raises #PF with P = 1 and I/D = 1, CR2 and RIP = the target; reads stay allowed. Clearing XD
 * (and INVLPG) makes the same code run (Intel SDM vol. 3A 4.6.1, 4.7). */
#include "paging.h"

static uint8_t page[PAGE_SIZE] PAGE_ALIGNED;

int main(void)
{
    idt_init();
    idt_set_handler(14, paging_on_pf);
    GUEST_ASSERT((rdmsr(MSR_EFER) >> 11) & 1);
    uint64_t va = (uint64_t)page;
    paging_write_ret_code(page, 7);
    GUEST_ASSERT_EQ(paging_try_call(va), 7);
    volatile uint64_t *pte = paging_pte(va);
    *pte |= PTE_XD;
    invlpg(va);
    GUEST_ASSERT_EQ(paging_try_call(va), PAGING_FAULTED);
    GUEST_ASSERT_EQ(pf_error & 0x1F, PF_P | PF_I);
    GUEST_ASSERT_EQ(pf_cr2, va);
    GUEST_ASSERT_EQ(pf_rip, va);
    GUEST_ASSERT_EQ(*(volatile uint8_t *)page, 0xB8); /* data reads are still fine */
    paging_write_ret_code(page, 8);                   /* so are stores */
    GUEST_ASSERT_EQ(paging_try_call(va), PAGING_FAULTED);
    *pte &= ~PTE_XD;
    invlpg(va);
    GUEST_ASSERT_EQ(paging_try_call(va), 8);
    GUEST_ASSERT_EQ(pf_count, 2);
    GUEST_DONE();
}
