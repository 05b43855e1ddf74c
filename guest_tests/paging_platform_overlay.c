/* paging_platform_overlay.c - a mapping over the platform area: the guest points the virtual
 * page of the platform's default IDT at a page of zeros, then raises #UD without an IDT of its
 * own. Every gate reads as not present, so #UD escalates to #DF and then to a triple fault:
 * the architected result (Intel SDM vol. 3A 6.15), a SHUTDOWN exit on every backend. */
#include "paging.h"

GUEST_EXPECT_ENDING("shutdown");

static uint8_t zeros[PAGE_SIZE] PAGE_ALIGNED;

int main(void)
{
    uint64_t idt_va = 0x40003000ULL; /* GUEST_IDT_OFFSET: the default IDT (IDTR.base) */
    volatile uint64_t *pte = paging_pte(idt_va);
    *pte = paging_phys(zeros) | PTE_P | PTE_RW;
    invlpg(idt_va);
    __asm__ volatile("ud2");
    guest_puts("not reached\n");
    return 1;
}
