/* sysenter.c - a guest SYSENTER must raise an exception inside the guest, never reach the host
 * kernel. vmlab's virtual CPU follows AMD: #UD in long mode (dbt). On vtx the hardware decides:
 * Intel raises #GP(0) because IA32_SYSENTER_CS is 0. On trap_emulate it runs natively: an AMD
 * host raises #UD (emulated, pass); an Intel host enters the host kernel, which discards the
 * guest RIP - vmlab stops the run (expected failure there). */
#include "guest.h"

GUEST_EXPECT_XFAIL("vtx", "kvm_amd", "internal",
                   "KVM on AMD intercepts #UD to emulate SYSENTER and gives up in 64-bit mode "
                   "(emulate.c em_sysenter: unhandleable): KVM internal error instead of #UD");
GUEST_EXPECT_XFAIL("vtx", "kvm_pvm", "internal",
                   "this host's KVM is PVM (software, no VT-x/AMD-V): it cannot emulate SYSENTER "
                   "(KVM internal error, emulation failure)");

GUEST_EXPECT_XFAIL(
    "trap_emulate", "!sysenter_ud", "internal",
    "Intel host: SYSENTER at CPL 3 enters the host kernel, which discards the guest RIP "
    "(SDM vol. 2B SYSENTER); vmlab blocks it but cannot resume the guest");

extern char do_sysenter[], after_sysenter[];

static void on_fault(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->rip, (uint64_t)do_sysenter);
    f->rip = (uint64_t)after_sysenter;
}

int main(void)
{
    idt_init();
    idt_set_handler(6, on_fault);
    idt_set_handler(13, on_fault);
    __asm__ volatile("movq $1, %%rax\n\tdo_sysenter: sysenter\n\tafter_sysenter:" ::
                         : "rax", "rcx", "r11", "memory");
    GUEST_ASSERT_EQ(isr_count[6] + isr_count[13], 1);
    guest_printf("SYSENTER raised %s\n", isr_count[6] ? "#UD" : "#GP");
    GUEST_DONE();
}
