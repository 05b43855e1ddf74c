/* seg_push_pop.c - PUSH FS / POP FS and PUSH GS / POP GS move the guest's selectors (0x10 at
 * reset). At CPL 3 PUSH FS shows the host's FS selector and nothing traps (Robin & Irvine). */
#include "guest.h"

GUEST_EXPECT_XFAIL("trap_emulate", "", "exit:1 fs == GUEST_SEL_DATA",
                   "PUSH of a segment register does not fault at CPL 3: the guest sees the host's "
                   "selector (Popek-Goldberg violation)");

int main(void)
{
    uint64_t fs = ~0ULL, gs = ~0ULL;
    __asm__ volatile("pushq %%fs\n\tpopq %0\n\tpushq %%gs\n\tpopq %1" : "=r"(fs), "=r"(gs));
    GUEST_ASSERT_EQ(fs, GUEST_SEL_DATA);
    GUEST_ASSERT_EQ(gs, GUEST_SEL_DATA);
    uint64_t back = ~0ULL;
    __asm__ volatile("pushq $0x10\n\tpopq %%fs\n\tmovq %%fs, %0" : "=r"(back) : : "memory");
    GUEST_ASSERT_EQ(back, GUEST_SEL_DATA);
    GUEST_DONE();
}
