/* paging_2m.c - a 2 MiB page (PDE with PS = 1) mapping another 2 MiB of RAM: every offset in
 * the page translates linearly, the PDE is the leaf for A and D, and remapping it with INVLPG
 * takes effect across the whole 2 MiB. */
#include "paging.h"

#define VA 0x42000000ULL /* 32 MiB into RAM: unused by the guest image */
#define GPA1 0x42400000ULL
#define GPA2 0x42800000ULL

int main(void)
{
    volatile uint64_t *pde = paging_pde(VA);
    GUEST_ASSERT(*pde & PTE_PS);
    for (uint64_t off = 0; off < LARGE_PAGE_SIZE; off += 0x40000) { /* markers via identity */
        *(volatile uint64_t *)(GPA1 + off) = 0x1000000 + off;
        *(volatile uint64_t *)(GPA2 + off) = 0x2000000 + off;
    }
    *pde = GPA1 | PTE_P | PTE_RW | PTE_PS;
    invlpg(VA);
    for (uint64_t off = 0; off < LARGE_PAGE_SIZE; off += 0x40000)
        GUEST_ASSERT_EQ(*(volatile uint64_t *)(VA + off), 0x1000000 + off);
    GUEST_ASSERT(*pde & PTE_A);
    GUEST_ASSERT(!(*pde & PTE_D));
    *(volatile uint64_t *)(VA + LARGE_PAGE_SIZE - 8) = 77;
    GUEST_ASSERT_EQ(*(volatile uint64_t *)(GPA1 + LARGE_PAGE_SIZE - 8), 77);
    GUEST_ASSERT(*pde & PTE_D);
    /* remap the whole 2 MiB; one INVLPG anywhere in it invalidates the large translation */
    *pde = GPA2 | PTE_P | PTE_RW | PTE_PS;
    invlpg(VA + 0x123000);
    for (uint64_t off = 0; off < LARGE_PAGE_SIZE; off += 0x40000)
        GUEST_ASSERT_EQ(*(volatile uint64_t *)(VA + off), 0x2000000 + off);
    GUEST_DONE();
}
