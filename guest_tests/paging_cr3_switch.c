/* paging_cr3_switch.c - two address spaces in which one guest-virtual page maps different data
 * and different code: after each MOV CR3 the guest reads the data and runs the code of the
 * space it switched to (a dbt backend must not run the other space's translation). */
#include "paging.h"

static uint8_t frame_a[PAGE_SIZE] PAGE_ALIGNED;
static uint8_t frame_b[PAGE_SIZE] PAGE_ALIGNED;
static uint64_t pt_b[512] PAGE_ALIGNED;

int main(void)
{
    uint64_t va = (uint64_t)frame_a; /* the shared address; space B maps it to frame_b */
    paging_write_ret_code(frame_a, 0xA);
    paging_write_ret_code(frame_b, 0xB);
    frame_a[0x800] = 'a';
    frame_b[0x800] = 'b';
    volatile uint64_t *pte = paging_pte(va); /* space A: identity, 4 KiB pages around va */
    uint64_t cr3_a = READ_CR(3);
    uint64_t cr3_b = paging_clone_root();
    /* space B gets its own page table for va's 2 MiB, identical except for va */
    const uint64_t *pt_a = (const uint64_t *)(pte - paging_index(va, 1));
    memcpy(pt_b, pt_a, PAGE_SIZE);
    pt_b[paging_index(va, 1)] = paging_phys(frame_b) | PTE_P | PTE_RW;
    paging_clone_tables[2][paging_index(va, 2)] = paging_phys(pt_b) | PTE_P | PTE_RW;

    for (unsigned round = 0; round < 100; round++) {
        bool b = round % 3 == 1;
        WRITE_CR(3, b ? cr3_b : cr3_a);
        GUEST_ASSERT_EQ(((uint64_t(*)(void))va)(), b ? 0xB : 0xA);
        GUEST_ASSERT_EQ(*(volatile uint8_t *)(va + 0x800), b ? 'b' : 'a');
    }
    /* a store in space B lands in frame_b; space A's frame is untouched */
    WRITE_CR(3, cr3_b);
    *(volatile uint8_t *)(va + 0x801) = 'B';
    WRITE_CR(3, cr3_a);
    GUEST_ASSERT_EQ(*(volatile uint8_t *)(va + 0x801), 0);
    GUEST_ASSERT_EQ(PEEK(frame_b[0x801]), 'B');
    /* new code in B's frame, written while A is current, runs once B is current again */
    paging_write_ret_code(frame_b, 0xBB);
    WRITE_CR(3, cr3_b);
    GUEST_ASSERT_EQ(((uint64_t(*)(void))va)(), 0xBB);
    WRITE_CR(3, cr3_a);
    GUEST_ASSERT_EQ(((uint64_t(*)(void))va)(), 0xA);
    GUEST_DONE();
}
