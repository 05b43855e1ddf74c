/* seg_mov.c - MOV to DS then MOV from DS returns the guest's selector; MOV from CS shows RPL 0
 * (the guest runs at CPL 0). Loading DS with a CPL-0 selector faults at CPL 3 and is
 * emulated, but MOV *from* a segment register never faults: it shows the host's selectors,
 * with RPL 3 in CS (Robin & Irvine). */
#include "guest.h"

GUEST_EXPECT_XFAIL("trap_emulate", "", "exit:1 ds == GUEST_SEL_DATA",
                   "MOV from a segment register does not fault at CPL 3: the guest sees the host's "
                   "selectors, CS with RPL 3 (Popek-Goldberg violation)");

int main(void)
{
    uint64_t ds = ~0ULL, cs = ~0ULL;
    __asm__ volatile("movw %w2, %%ds\n\tmovq %%ds, %0\n\tmovq %%cs, %1"
                     : "=r"(ds), "=r"(cs)
                     : "r"(0x10ULL)
                     : "memory");
    GUEST_ASSERT_EQ(ds, GUEST_SEL_DATA);
    GUEST_ASSERT_EQ(cs & 3, 0);
    GUEST_ASSERT_EQ(cs, GUEST_SEL_CODE);
    GUEST_DONE();
}
