/* robust_fsgsbase_ud.c - with CR4.FSGSBASE clear (its reset value), RDFSBASE, WRFSBASE,
 * RDGSBASE and WRGSBASE are #UD (SDM vol. 2B RDFSBASE: "#UD if CR4.FSGSBASE[bit 16] = 0") and
 * the bases do not change. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "trap_emulate", "", "exit:1 ud == 4",
    "RD/WRFSBASE are sensitive but unprivileged: with the host's CR4.FSGSBASE set they run "
    "natively at CPL 3 whatever the guest's CR4 says (Popek-Goldberg violation)");

GUEST_EXPECT_XFAIL("vtx", "kvm_pvm", "exit:1 ud == 4",
                   "PVM runs the guest kernel at hardware CPL 3 under the host's CR4.FSGSBASE: the "
                   "instructions run natively there too");

#define MSR_FS_BASE 0xC0000100

static volatile uint64_t ud;

static void on_ud(struct isr_frame *f)
{
    ud++;
    f->rip += 5; /* F3 48 0F AE /0../3 */
}

int main(void)
{
    idt_init();
    idt_set_handler(6, on_ud);
    uint64_t v = 0x1234;
    wrmsr(MSR_FS_BASE, 0x5000);
    __asm__ volatile("rdfsbase %0" : "+r"(v));
    __asm__ volatile("wrfsbase %0" ::"r"(0x6000ULL));
    __asm__ volatile("rdgsbase %0" : "+r"(v));
    __asm__ volatile("wrgsbase %0" ::"r"(0x6000ULL));
    GUEST_ASSERT_EQ(ud, 4);
    GUEST_ASSERT_EQ(v, 0x1234);
    GUEST_ASSERT_EQ(rdmsr(MSR_FS_BASE), 0x5000);
    GUEST_DONE();
}
