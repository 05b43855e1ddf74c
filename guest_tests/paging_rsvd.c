/* paging_rsvd.c - reserved bits in a paging-structure entry: #PF with RSVD = 1 (Intel SDM vol.
 * 3A 4.7; AMD APM vol. 2 8.4.2), W/R and I/D as for any fault. Only bits reserved on every
 * x86-64 CPU are used: bit 51 (above any MAXPHYADDR below 52), PS in a PML4E, and XD while
 * EFER.NXE = 0. The P bit is not asserted: Intel sets it for a reserved-bit fault, AMD's
 * manual does not say, and the nested kvm_amd test machine reports it clear. */
#include "paging.h"

static uint8_t page[PAGE_SIZE] PAGE_ALIGNED;
#define FAR_VA 0x8000000000ULL
#define RSVD_BITS (PF_RSVD | PF_W | PF_U | PF_I) /* PML4[1]: not used by the platform map */

int main(void)
{
    idt_init();
    idt_set_handler(14, paging_on_pf);
    uint64_t va = (uint64_t)page;
    volatile uint64_t *pte = paging_pte(va);
    uint64_t good = *pte;

    *pte = good | (1ULL << 51);
    invlpg(va);
    GUEST_ASSERT_EQ(paging_try_load(va), PAGING_FAULTED);
    GUEST_ASSERT_EQ(pf_error & RSVD_BITS, PF_RSVD);
    GUEST_ASSERT_EQ(pf_cr2, va);
    GUEST_ASSERT(!paging_try_store(va + 8, 1));
    GUEST_ASSERT_EQ(pf_error & RSVD_BITS, PF_RSVD | PF_W);
    *pte = good;
    invlpg(va);
    GUEST_ASSERT(paging_try_store(va + 8, 1));

    /* PS = 1 in a PML4 entry */
    uint64_t *pml4 = paging_table(READ_CR(3));
    static uint64_t pdpt[512] PAGE_ALIGNED;
    pml4[1] = paging_phys(pdpt) | PTE_P | PTE_RW | PTE_PS;
    invlpg(FAR_VA);
    GUEST_ASSERT_EQ(paging_try_load(FAR_VA), PAGING_FAULTED);
    GUEST_ASSERT_EQ(pf_error & RSVD_BITS, PF_RSVD);
    GUEST_ASSERT_EQ(pf_cr2, FAR_VA);
    pml4[1] = 0;
    invlpg(FAR_VA);

    /* XD without EFER.NXE: bit 63 is reserved */
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~(1ULL << 11));
    *pte = good | PTE_XD;
    invlpg(va);
    GUEST_ASSERT_EQ(paging_try_load(va), PAGING_FAULTED);
    GUEST_ASSERT_EQ(pf_error & RSVD_BITS, PF_RSVD);
    *pte = good;
    invlpg(va);
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | (1ULL << 11));
    GUEST_ASSERT_EQ(paging_try_load(va + 8), 1);
    GUEST_ASSERT_EQ(pf_count, 4);
    GUEST_DONE();
}
