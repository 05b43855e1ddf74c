/* robust_noncanonical_rip.c - a guest-controlled RIP that is not canonical is never loaded:
 * an IDT gate whose target is not canonical makes the delivery raise #GP (Intel SDM vol. 3A
 * 6.14.1: "A general-protection exception (#GP) is generated if software attempts to
 * reference an interrupt gate with a target RIP that is not in canonical form"; vol. 2A
 * INT n: #GP(EXT)), a far JMP or far RET to a non-canonical offset is #GP(0) (vol. 2A JMP,
 * RET), each reported at the instruction that tried. On trap_emulate the host resumes the
 * guest with IRETQ: a non-canonical RIP there faulted in host code and killed the process. */
#include "guest.h"

GUEST_EXPECT_TIMEOUT("3");
GUEST_EXPECT_XFAIL("vtx", "kvm_pvm", "budget",
                   "PVM does not raise #GP for an IDT gate whose target is not canonical: the "
                   "delivery never completes (observed: the time budget ends the run)");
GUEST_EXPECT_XFAIL("vtx", "qemu_tcg", "budget",
                   "nested test only: QEMU TCG loads the non-canonical target from the gate "
                   "without the canonical check and spins there (TCG, not vmlab, not AMD-V)");

static volatile uint64_t gp_rip, gp_error, skip = 2;

static void on_gp(struct isr_frame *f)
{
    gp_rip = f->rip;
    gp_error = f->error_code;
    f->rip += skip; /* past the instruction that faulted */
}

struct __attribute__((packed)) farptr {
    uint64_t offset;
    uint16_t selector;
};

int main(void)
{
    idt_init();
    idt_set_handler(13, on_gp);

    /* #UD through a gate whose target is 0x00008000_xxxxxxxx (bit 47 set, 63:48 clear). */
    uint64_t *idt = idt_table();
    idt[2 * 6 + 1] = 0x8000;
    uint64_t at;
    __asm__ volatile("lea 1f(%%rip), %0\n1: ud2" : "=r"(at) : : "memory");
    GUEST_ASSERT_EQ(isr_count[13], 1);
    GUEST_ASSERT_EQ(isr_count[6], 0);
    GUEST_ASSERT_EQ(gp_rip, at);
    GUEST_ASSERT_EQ(gp_error & ~1ULL, 0); /* no selector: #GP(EXT) */

    /* INT 0x50 through such a gate: #GP(EXT) with EXT 0, at the INT. */
    idt_set_handler(0x50, on_gp);
    idt[2 * 0x50 + 1] = 0xFFFF0000;
    __asm__ volatile("lea 1f(%%rip), %0\n1: int $0x50" : "=r"(at) : : "memory");
    GUEST_ASSERT_EQ(isr_count[13], 2);
    GUEST_ASSERT_EQ(gp_rip, at);
    GUEST_ASSERT_EQ(gp_error & ~1ULL, 0);

    /* JMP m16:64 (REX.W FF /5, 3 bytes) to a non-canonical offset: #GP(0) at the JMP. */
    static struct farptr p;
    p.offset = 0x0000800000001000ULL;
    p.selector = GUEST_SEL_CODE;
    skip = 3;
    __asm__ volatile("lea 1f(%%rip), %0\n1: .byte 0x48, 0xff, 0x28"
                     : "=r"(at)
                     : "a"(&p)
                     : "memory");
    GUEST_ASSERT_EQ(isr_count[13], 3);
    GUEST_ASSERT_EQ(gp_rip, at);
    GUEST_ASSERT_EQ(gp_error, 0);

    /* RETF (REX.W CB, 2 bytes) to a non-canonical return address: #GP(0) at the RETF, the
     * stack unchanged. */
    skip = 2;
    uint64_t rsp_before, rsp_after;
    __asm__ volatile("mov %%rsp, %1\n\t"
                     "pushq %3\n\t"
                     "pushq %4\n\t"
                     "lea 1f(%%rip), %0\n"
                     "1: .byte 0x48, 0xcb\n\t"
                     "mov %%rsp, %2\n\t"
                     "add $16, %%rsp"
                     : "=&r"(at), "=&r"(rsp_before), "=&r"(rsp_after)
                     : "i"(GUEST_SEL_CODE), "r"(0xFFFF000000002000ULL)
                     : "memory");
    GUEST_ASSERT_EQ(isr_count[13], 4);
    GUEST_ASSERT_EQ(gp_rip, at);
    GUEST_ASSERT_EQ(gp_error, 0);
    GUEST_ASSERT_EQ(rsp_after, rsp_before - 16);
    GUEST_DONE();
}
