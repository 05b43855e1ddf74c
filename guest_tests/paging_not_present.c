/* paging_not_present.c - accesses to a page whose PTE is not present raise #PF with CR2 = the
 * address and the architected error code (Intel SDM vol. 3A 4.7): P = 0, W/R = the access,
 * U/S = 0 (CPL 0), I/D = 1 only for an instruction fetch (EFER.NXE = 1 here). The faulting
 * instruction is not completed; after the PTE is made present the same access works. */
#include "paging.h"

static uint8_t page[PAGE_SIZE] PAGE_ALIGNED;

int main(void)
{
    idt_init();
    idt_set_handler(14, paging_on_pf);
    uint64_t va = (uint64_t)page;
    paging_write_ret_code(page, 42);
    *(volatile uint64_t *)(page + 0x800) = 0x1234;
    volatile uint64_t *pte = paging_pte(va);
    uint64_t present = *pte;
    *pte = present & ~PTE_P;
    invlpg(va);

    GUEST_ASSERT_EQ(paging_try_load(va + 0x800), PAGING_FAULTED);
    GUEST_ASSERT_EQ(pf_cr2, va + 0x800);
    GUEST_ASSERT_EQ(pf_error & 0x1F, 0);

    GUEST_ASSERT(!paging_try_store(va + 0x808, 5));
    GUEST_ASSERT_EQ(pf_cr2, va + 0x808);
    GUEST_ASSERT_EQ(pf_error & 0x1F, PF_W);

    GUEST_ASSERT((rdmsr(MSR_EFER) >> 11) & 1); /* NXE: the I/D bit is reported */
    GUEST_ASSERT_EQ(paging_try_call(va), PAGING_FAULTED);
    GUEST_ASSERT_EQ(pf_cr2, va);
    GUEST_ASSERT_EQ(pf_rip, va); /* a fetch fault reports the target as RIP */
    GUEST_ASSERT_EQ(pf_error & 0x1F, PF_I);

    /* an access that straddles into the page: CR2 is its first byte there */
    GUEST_ASSERT_EQ(paging_try_load(va - 4), PAGING_FAULTED);
    GUEST_ASSERT_EQ(pf_cr2, va);
    GUEST_ASSERT_EQ(pf_count, 4);

    *pte = present;
    invlpg(va);
    GUEST_ASSERT_EQ(paging_try_load(va + 0x800), 0x1234);
    GUEST_ASSERT(paging_try_store(va + 0x808, 5));
    GUEST_ASSERT_EQ(paging_try_call(va), 42);
    GUEST_ASSERT_EQ(pf_count, 4);
    GUEST_DONE();
}
