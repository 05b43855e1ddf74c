/* robust_int1.c - INT1 (ICEBP, opcode F1) raises #DB as a trap: the saved RIP is that of the
 * next instruction (Intel SDM vol. 2A INT n/INTO/INT3/INT1: "INT1 ... the saved instruction
 * pointer points to the instruction after INT1"; vol. 3B 18.2, table 18-2: INT1 is a trap-class
 * debug exception). The same on every backend. */
#include "guest.h"

GUEST_EXPECT_XFAIL("vtx", "qemu_tcg", "exit:1 vector 6",
                   "nested test only: the CPU under kvm_amd is QEMU TCG, which raises #UD for "
                   "INT1 in its SVM guest instead of #DB (TCG, not vmlab, not AMD-V)");
GUEST_EXPECT_XFAIL("vtx", "kvm_pvm", "internal",
                   "PVM hands INT1 to KVM's instruction emulator, which does not emulate it");

static volatile uint64_t db_rip;

static void on_db(struct isr_frame *f)
{
    db_rip = f->rip;
}

int main(void)
{
    idt_init();
    idt_set_handler(1, on_db);
    uint64_t after;
    __asm__ volatile("lea 1f(%%rip), %0\n .byte 0xf1\n 1:" : "=r"(after));
    GUEST_ASSERT_EQ(isr_count[1], 1);
    GUEST_ASSERT_EQ(db_rip, after);
    GUEST_DONE();
}
