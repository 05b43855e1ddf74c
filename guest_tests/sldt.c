/* sldt.c - after LLDT, SLDT returns the guest's LDT selector. LLDT is privileged (emulated on
 * trap_emulate) but SLDT is not: at CPL 3 it returns the host's LDTR (or a UMIP dummy). */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "trap_emulate", "!umip_faults", "exit:1 sel == 0x28",
    "SLDT is sensitive but unprivileged: at CPL 3 it returns the host LDTR (or the host "
    "kernel UMIP dummy), not the guest's (Popek-Goldberg violation)");

static uint64_t ldt[2] __attribute__((aligned(16)));

int main(void)
{
    uint64_t *gdt = gdt_install(8);
    uint64_t l = (uint64_t)ldt;
    gdt[5] = gdt_descriptor((uint32_t)l, sizeof(ldt) - 1, 0x82, 0);
    gdt[6] = l >> 32;
    __asm__ volatile("lldt %w0" ::"r"(0x28) : "memory");
    uint64_t sel = ~0ULL;
    __asm__ volatile("sldt %0" : "=r"(sel));
    GUEST_ASSERT_EQ(sel, 0x28);
    GUEST_DONE();
}
