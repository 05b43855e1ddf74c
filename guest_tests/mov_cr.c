/* mov_cr.c - MOV to/from CR0, CR2, CR3, CR4, CR8 and CLTS: privileged, passes everywhere. */
#include "guest.h"

static uint8_t pml4_copy[4096] __attribute__((aligned(4096)));
extern char pf_insn[], pf_after[];

static void on_pf(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(READ_CR(2), 0x1000);
    GUEST_ASSERT(f->error_code & 2); /* a write */
    f->rip = (uint64_t)pf_after;
}

int main(void)
{
    uint64_t cr0 = READ_CR(0);
    GUEST_ASSERT_EQ(cr0 & 0x80000001ULL, 0x80000001ULL); /* PG and PE: the guest model */
    WRITE_CR(0, cr0 | 8);                                /* TS */
    GUEST_ASSERT(READ_CR(0) & 8);
    __asm__ volatile("clts");
    GUEST_ASSERT_EQ(READ_CR(0) & 8, 0);

    uint64_t cr3 = READ_CR(3);
    GUEST_ASSERT_EQ(cr3, 0x40010000ULL);
    memcpy(pml4_copy, (void *)cr3, 4096); /* the copy points at the same PDPT */
    WRITE_CR(3, (uint64_t)pml4_copy);
    GUEST_ASSERT_EQ(READ_CR(3), (uint64_t)pml4_copy);
    guest_puts("running on the copied page tables\n");
    WRITE_CR(3, cr3);

    uint64_t cr4 = READ_CR(4);
    GUEST_ASSERT(cr4 & (1 << 5)); /* PAE */
    WRITE_CR(4, cr4 | (1 << 7));  /* PGE */
    GUEST_ASSERT(READ_CR(4) & (1 << 7));
    WRITE_CR(4, cr4);
    GUEST_ASSERT_EQ(READ_CR(4), cr4);

    WRITE_CR(8, 5);
    GUEST_ASSERT_EQ(READ_CR(8), 5);
    WRITE_CR(8, 0);

    idt_init();
    idt_set_handler(14, on_pf);
    __asm__ volatile("pf_insn: movb $1, (%0)\n\tpf_after:" ::"r"(0x1000ULL) : "memory");
    GUEST_ASSERT_EQ(isr_count[14], 1);
    GUEST_DONE();
}
