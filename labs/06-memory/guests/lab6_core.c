/* lab6_core.c - lab 6: the emulation core sees memory through your page walk. On trap_emulate
 * and dbt an interrupt's frame, the IDT gate it reads and an LIDT operand are accessed by the
 * core (emu/), not natively: with linear = physical they read and write the wrong frames. */
#include "paging.h"

GUEST_EXPECT_OUTPUT("*", "lab6: ok");
GUEST_EXPECT_XFAIL("vtx", "kvm_pvm", "internal",
                   "this host's KVM is PVM (software, no VT-x/AMD-V): it cannot emulate INT n for "
                   "a guest that is not PVM-aware");

static uint8_t idt_frame[PAGE_SIZE] PAGE_ALIGNED;  /* where the IDT really is */
static uint8_t idt_window[PAGE_SIZE] PAGE_ALIGNED; /* the linear address it is given at */
static uint8_t dtr_frame[PAGE_SIZE] PAGE_ALIGNED;
static uint8_t dtr_window[PAGE_SIZE] PAGE_ALIGNED;
static uint8_t stack[2][PAGE_SIZE] PAGE_ALIGNED;
static volatile unsigned hits;

void lab6_isr(void);
__asm__(".text\nlab6_isr:\n    incl hits(%rip)\n    iretq\n");

int main(void)
{
    /* 1. the IDT at a linear page that maps another frame: the gate must be read there */
    uint64_t target = (uint64_t)lab6_isr;
    uint64_t *gate = (uint64_t *)(idt_frame + 0x30 * 16);
    gate[0] =
        (target & 0xFFFF) | (0x08ULL << 16) | (0x8EULL << 40) | (((target >> 16) & 0xFFFF) << 48);
    gate[1] = target >> 32;
    *paging_pte((uint64_t)idt_window) = paging_phys(idt_frame) | PTE_P | PTE_RW;
    invlpg((uint64_t)idt_window);
    struct dtr idtr = {.limit = 256 * 16 - 1, .base = (uint64_t)idt_window};
    lidt(&idtr);
    /* 2. the stack the frame is pushed on: a page mapped elsewhere, A and D clear */
    volatile uint64_t *spte = paging_pte((uint64_t)stack[0]);
    *spte = paging_phys(stack[1]) | PTE_P | PTE_RW;
    invlpg((uint64_t)stack[0]);
    uint64_t top = (uint64_t)stack[0] + PAGE_SIZE;
    __asm__ volatile("mov %%rsp, %%rbx\n\tmov %0, %%rsp\n\tint $0x30\n\tmov %%rbx, %%rsp" ::"r"(top)
                     : "rbx", "memory");
    GUEST_ASSERT_EQ(hits, 1);
    GUEST_ASSERT_EQ(*spte & (PTE_A | PTE_D), PTE_A | PTE_D); /* the frame push dirtied it */
    /* the frame's return address landed in the frame the stack's PTE names */
    uint64_t *frame_top = (uint64_t *)(stack[1] + PAGE_SIZE);
    GUEST_ASSERT(PEEK(frame_top[-5]) > 0x40200000ULL); /* RIP */
    GUEST_ASSERT_EQ(PEEK(frame_top[-4]), 0x08);        /* CS */
    /* 3. an LIDT operand read through the tables: the frame it maps to holds the right IDTR,
     * the page's identity frame a wrong one (base 0) */
    struct dtr good = {.limit = 256 * 16 - 1, .base = (uint64_t)idt_window}, wrong = {0, 0};
    memcpy(dtr_frame, &good, sizeof(good));
    memcpy(dtr_window, &wrong, sizeof(wrong));
    *paging_pte((uint64_t)dtr_window) = paging_phys(dtr_frame) | PTE_P;
    invlpg((uint64_t)dtr_window);
    __asm__ volatile("lidt (%0)" ::"r"(dtr_window) : "memory");
    __asm__ volatile("int $0x30" ::: "memory");
    GUEST_ASSERT_EQ(hits, 2);
    guest_puts("lab6: ok\n");
    GUEST_DONE();
}
