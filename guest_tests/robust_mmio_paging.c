/* robust_mmio_paging.c - the MMIO emulation follows the guest's page tables: a guest-virtual
 * page mapped onto the MMIO scratch register's guest-physical page reaches the device through
 * that mapping (the device sees the guest-physical address), for a load, a store, a
 * read-modify-write and a stack in the aliased page; what the guest reads through the
 * identity mapping agrees. SDM vol. 3A 4 (paging); the device is vmm/devices.c's scratch
 * register at GUEST_MMIO_SCRATCH. */
#include "paging.h"

static uint8_t alias_slot[PAGE_SIZE] PAGE_ALIGNED; /* its address becomes the alias */

int main(void)
{
    volatile uint64_t *device = (volatile uint64_t *)GUEST_MMIO_SCRATCH;
    volatile uint64_t *alias = (volatile uint64_t *)alias_slot;
    volatile uint64_t *pte = paging_pte((uint64_t)alias_slot);
    *pte = GUEST_MMIO_SCRATCH | PTE_P | PTE_RW;
    invlpg((uint64_t)alias_slot);

    *alias = 0x1122334455667788ULL; /* store through the alias */
    GUEST_ASSERT_EQ(*device, 0x1122334455667788ULL);
    *device = 0x0102030405060708ULL;
    GUEST_ASSERT_EQ(*alias, 0x0102030405060708ULL); /* load through the alias */
    __asm__ volatile("addq $0x10, %0" : "+m"(*alias)::"cc"); /* read-modify-write */
    GUEST_ASSERT_EQ(*device, 0x0102030405060718ULL);
    uint64_t popped;
    __asm__ volatile("movq %%rsp, %%r11\n\tleaq 8(%1), %%rsp\n\tpushq $0x77\n\tpopq %0\n\t"
                     "movq %%r11, %%rsp"
                     : "=r"(popped)
                     : "r"(alias)
                     : "r11", "memory");
    GUEST_ASSERT_EQ(popped, 0x77);
    GUEST_ASSERT_EQ(*device, 0x77);
    /* the page not present: a #PF at the alias, not an access to the device */
    idt_init();
    idt_set_handler(14, paging_on_pf);
    *pte = 0;
    invlpg((uint64_t)alias_slot);
    GUEST_ASSERT(!paging_try_store((uint64_t)alias, 5));
    GUEST_ASSERT_EQ(pf_cr2, (uint64_t)alias);
    GUEST_ASSERT_EQ(*device, 0x77);
    GUEST_DONE();
}
