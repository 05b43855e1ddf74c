/* robust_mxcsr_unmask.c - a guest that unmasks every SSE and x87 floating-point exception must
 * not make the host's own floating-point code fault: host code runs with the host's MXCSR and
 * x87 control word, the guest keeps its own. With its exceptions unmasked, the guest's own SSE
 * division by zero is #XM (vector 19, CR4.OSXMMEXCPT is set at reset) delivered to the guest,
 * and its x87 one is #MF (vector 16, CR0.NE) at the next waiting x87 instruction.
 * Intel SDM vol. 1 11.5 (SIMD floating-point exceptions), 8.7 (x87 exceptions, CR0.NE). */
#include "guest.h"

GUEST_EXPECT_XFAIL("vtx", "qemu_tcg", "exit:1 isr_count[19]",
                   "nested test only: the CPU under kvm_amd is QEMU TCG, which never raises #XM "
                   "for unmasked SSE exceptions (TCG, not vmlab, not AMD-V)");
GUEST_EXPECT_XFAIL(
    "vtx", "kvm_pvm", "internal",
    "PVM hands x87 arithmetic to KVM's instruction emulator, which does not emulate it");

static void on_timer(struct isr_frame *f)
{
    (void)f;
}
static void skip_divss(struct isr_frame *f)
{
    f->rip += 4; /* DIVSS xmm0, xmm1: F3 0F 5E C1 */
}
static void skip_fwait(struct isr_frame *f)
{
    f->rip += 1; /* the FWAIT that reported the pending x87 exception */
}

static uint32_t get_mxcsr(void)
{
    uint32_t m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return m;
}

static bool ticks3(void)
{
    return isr_count[0x40] >= 3;
}

int main(void)
{
    idt_init();
    idt_set_handler(0x40, on_timer);
    idt_set_handler(19, skip_divss);
    idt_set_handler(16, skip_fwait);
    uint32_t all_unmasked = 0x0000, fxsave_image[128] __attribute__((aligned(16)));

    /* x87: a masked division by zero leaves ZE set; unmasking it makes it pending (ES) */
    uint16_t cw_masked = 0x037F, cw_unmasked = 0x0360;
    __asm__ volatile(
        "fninit\n fldcw %0\n fld1\n fldz\n fdivrp\n fstp %%st(0)\n fldcw %1" ::"m"(cw_masked),
        "m"(cw_unmasked));
    /* SSE: every exception unmasked through LDMXCSR */
    __asm__ volatile("ldmxcsr %0" ::"m"(all_unmasked));

    /* Transitions to host code: callouts, VMM exits, fresh translations, interrupts */
    uint32_t r[4];
    for (int i = 0; i < 50; i++) {
        cpuid(0, 0, r);
        outl(GUEST_PORT_SCRATCH, (uint32_t)i);
        GUEST_ASSERT_EQ(inl(GUEST_PORT_SCRATCH), (uint32_t)i);
    }
    guest_printf("console output with exceptions unmasked\n");
    timer_start(0x40, 500);
    sti();
    GUEST_ASSERT(spin_until(ticks3, 500000));
    cli();
    timer_stop();
    GUEST_ASSERT_EQ(get_mxcsr(), all_unmasked);

    /* The guest's own SSE division by zero: #XM */
    __asm__ volatile("xorps %%xmm1, %%xmm1\n"
                     "mov $0x3f800000, %%eax\n movd %%eax, %%xmm0\n"
                     "divss %%xmm1, %%xmm0\n" ::
                         : "eax"); /* nothing else uses xmm (-mgeneral-regs-only) */
    GUEST_ASSERT_EQ(isr_count[19], 1);
    GUEST_ASSERT(get_mxcsr() & 0x4); /* ZE flag set by the faulting DIVSS */

    /* The guest's pending x87 exception: #MF at the next waiting instruction */
    __asm__ volatile("fwait");
    GUEST_ASSERT_EQ(isr_count[16], 1);

    /* FXRSTOR of an image with every SSE exception unmasked, then more host work */
    __asm__ volatile("fnclex\n fldcw %1\n fxsave64 %0" : "=m"(fxsave_image) : "m"(cw_masked));
    fxsave_image[6] = 0x0000; /* MXCSR: every exception unmasked, flags clear */
    __asm__ volatile("fxrstor64 %0" ::"m"(fxsave_image));
    for (int i = 0; i < 20; i++)
        cpuid(1, 0, r);
    guest_printf("after FXRSTOR\n");
    GUEST_ASSERT_EQ(get_mxcsr(), 0);

    /* End the run with every exception still unmasked: the VMM's own floating point after the
     * run (elapsed time, statistics) must not fault either. */
    GUEST_DONE();
}
