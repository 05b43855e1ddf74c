/* far_jmp.c - JMP m16:64 to 0x08:label lands there with CS = 0x08. At CPL 3 the far jump to a
 * DPL-0 selector faults and is emulated (virtual CS), but the native CS the guest then reads
 * is still the host's (Robin & Irvine: far transfers depend on CPL). */
#include "guest.h"

GUEST_EXPECT_XFAIL("trap_emulate", "", "exit:1 cs == GUEST_SEL_CODE",
                   "far JMP is sensitive: its privilege checks use the host CPL and GDT; the guest "
                   "then reads the host's CS (Popek-Goldberg violation)");

struct __attribute__((packed)) farptr {
    uint64_t offset;
    uint16_t selector;
};
extern char far_target[];

int main(void)
{
    static struct farptr p;
    p.offset = (uint64_t)far_target;
    p.selector = GUEST_SEL_CODE;
    uint64_t cs = 0;
    __asm__ volatile(".byte 0x48, 0xff, 0x28\n\t" /* REX.W JMP far [rax] */
                     "ud2\n"
                     "far_target: movq %%cs, %0"
                     : "=r"(cs)
                     : "a"(&p)
                     : "memory");
    GUEST_ASSERT_EQ(cs, GUEST_SEL_CODE);
    GUEST_DONE();
}
