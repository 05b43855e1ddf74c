/* far_call.c - CALL m16:64 pushes CS:RIP and the callee runs with CS = 0x08; RETFQ returns.
 * At CPL 3 the transfers to a DPL-0 selector fault and are emulated, but the callee's own view
 * of CS (MOV from CS) is the host's (Robin & Irvine). */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "trap_emulate", "", "exit:1 callee_cs == GUEST_SEL_CODE",
    "far CALL is sensitive: its privilege checks use the host CPL and GDT; the callee "
    "reads the host's CS (Popek-Goldberg violation)");

struct __attribute__((packed)) farptr {
    uint64_t offset;
    uint16_t selector;
};
volatile uint64_t callee_cs, pushed_cs;
extern char far_callee[];
__asm__(".text\n"
        "far_callee:\n\t"
        "movq %cs, %rax\n\t"
        "movq %rax, callee_cs(%rip)\n\t"
        "movq 8(%rsp), %rax\n\t"
        "movq %rax, pushed_cs(%rip)\n\t"
        ".byte 0x48, 0xcb\n"); /* RETFQ */

int main(void)
{
    static struct farptr p;
    p.offset = (uint64_t)far_callee;
    p.selector = GUEST_SEL_CODE;
    __asm__ volatile(".byte 0x48, 0xff, 0x18" /* REX.W CALL far [rax] */
                     :
                     : "a"(&p)
                     : "memory", "cc");
    GUEST_ASSERT_EQ(pushed_cs, GUEST_SEL_CODE);
    GUEST_ASSERT_EQ(callee_cs, GUEST_SEL_CODE);
    GUEST_DONE();
}
