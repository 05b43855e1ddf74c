/* paging_bad_tables.c - page tables pointing outside guest RAM. A PDE names a "page table" in
 * unassigned guest-physical space: the access raises #PF with CR2 = the address. What such a
 * table reads as is the platform's choice (bare metal: all ones, so RSVD = 1; KVM, PVM and
 * nested kvm_amd alike: nothing there, so P = 0); vmlab's in-process backends do what KVM
 * does. Either way: no hang, no host fault, the guest's own #PF handler runs. */
#include "paging.h"

#define VA 0x5FC00000ULL      /* an unused 2 MiB slot of the guest space */
#define NOT_RAM 0x50000000ULL /* unassigned guest-physical space */

int main(void)
{
    idt_init();
    idt_set_handler(14, paging_on_pf);
    volatile uint64_t *pde = paging_pde(VA);
    *pde = NOT_RAM | PTE_P | PTE_RW; /* a PT outside RAM */
    invlpg(VA);
    GUEST_ASSERT_EQ(paging_try_load(VA + 0x40), PAGING_FAULTED);
    GUEST_ASSERT_EQ(pf_cr2, VA + 0x40);
    GUEST_ASSERT((pf_error & PF_P) == 0 || (pf_error & PF_RSVD)); /* not present, or RSVD */
    GUEST_ASSERT_EQ(pf_error & (PF_W | PF_U | PF_I), 0);
    *pde = 0;
    invlpg(VA);
    GUEST_DONE();
}
