/* ltr_lldt.c - LTR marks the TSS descriptor busy in guest memory, LLDT accepts an LDT
 * descriptor (SDM vol. 2A LTR/LLDT). Privileged: passes everywhere. */
#include "guest.h"

static uint8_t tss[104] __attribute__((aligned(16)));
static uint64_t ldt[4] __attribute__((aligned(16)));

int main(void)
{
    uint64_t *gdt = gdt_install(12);
    uint64_t t = (uint64_t)tss, l = (uint64_t)ldt;
    gdt[5] = gdt_descriptor((uint32_t)l, sizeof(ldt) - 1, 0x82, 0); /* LDT, present */
    gdt[6] = l >> 32;
    gdt[7] = gdt_descriptor((uint32_t)t, sizeof(tss) - 1, 0x89, 0); /* available 64-bit TSS */
    gdt[8] = t >> 32;
    __asm__ volatile("lldt %w0" ::"r"(0x28) : "memory");
    __asm__ volatile("ltr %w0" ::"r"(0x38) : "memory");
    GUEST_ASSERT_EQ((gdt[7] >> 40) & 0xF, 0xB); /* busy */
    GUEST_DONE();
}
