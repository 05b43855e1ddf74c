/* robust_fsgsbase.c - vmlab's virtual CPU does not advertise FSGSBASE (CPUID.7.0:EBX[0] = 0)
 * and starts with CR4.FSGSBASE = 0, so RDFSBASE, RDGSBASE, WRFSBASE and WRGSBASE raise #UD
 * (SDM vol. 2B RDFSBASE/WRFSBASE: "#UD if CR4.FSGSBASE[bit 16] = 0"). dbt (emulated) and vtx
 * (hardware) agree. trap_emulate cannot: the instructions are sensitive but unprivileged, and
 * at CPL 3 they obey the host's CR4.FSGSBASE, which Linux sets (trap_emulate requires it to
 * keep the guest's FS base apart from the host's TLS). Issue 10 found trap_emulate running
 * WRFSBASE where dbt raised #UD: dbt is right, trap_emulate shows the Popek-Goldberg
 * violation. */
#include "guest.h"

GUEST_EXPECT("trap_emulate", "xfail", "",
             "RD/WRFSBASE are sensitive but unprivileged: at CPL 3 they obey the host's "
             "CR4.FSGSBASE (set by Linux) and run instead of raising #UD (Popek-Goldberg "
             "violation)");

GUEST_EXPECT("vtx", "xfail", "kvm_pvm",
             "PVM runs the guest kernel in host user mode, where RD/WRFSBASE obey the host's "
             "CR4.FSGSBASE as on trap_emulate: no #UD");

static volatile uint64_t ud_count;

static void on_ud(struct isr_frame *f)
{
    ud_count++;
    f->rip += 5; /* F3 REX.W 0F AE /r */
}

int main(void)
{
    idt_init();
    idt_set_handler(6, on_ud);
    uint32_t r[4];
    cpuid(7, 0, r);
    GUEST_ASSERT_EQ(r[1] & 1, 0); /* no FSGSBASE in the virtual CPU */
    GUEST_ASSERT_EQ(READ_CR(4) & (1u << 16), 0);
    uint64_t v = 0x1000;
    __asm__ volatile("rdfsbase %0" : "+r"(v)::"memory");
    __asm__ volatile("rdgsbase %0" : "+r"(v)::"memory");
    __asm__ volatile("wrfsbase %0" ::"r"(v) : "memory");
    __asm__ volatile("wrgsbase %0" ::"r"(v) : "memory");
    guest_printf("%llu of 4 raised #UD\n", (unsigned long long)ud_count);
    GUEST_ASSERT_EQ(ud_count, 4);
    GUEST_DONE();
}
