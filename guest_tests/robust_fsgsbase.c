/* robust_fsgsbase.c - vmlab's virtual CPU has FSGSBASE (CPUID.(EAX=7,ECX=0):EBX[0]): once the
 * guest sets CR4.FSGSBASE, RDFSBASE/WRFSBASE/RDGSBASE/WRGSBASE read and write its FS and GS
 * bases, which IA32_FS_BASE/IA32_GS_BASE show and FS/GS-relative accesses use, also after
 * callouts and VMM exits; a non-canonical base is #GP(0). SDM vol. 2B RDFSBASE/WRFSBASE,
 * vol. 3A 2.5 (CR4.FSGSBASE). */
#include "guest.h"

GUEST_EXPECT_XFAIL("vtx", "qemu_tcg", "exit:1 gp_faults == 1",
                   "nested test only: the CPU under kvm_amd is QEMU TCG, whose WRFSBASE accepts a "
                   "non-canonical base without #GP (TCG, not vmlab, not AMD-V)");

#define MSR_FS_BASE 0xC0000100
#define CR4_FSGSBASE (1ULL << 16)

static uint64_t area[4] = {0x1010, 0x2020, 0x3030, 0x4040};
static volatile uint64_t gp_faults, pf_cr2;

static void on_gp(struct isr_frame *f)
{
    gp_faults++;
    f->rip += 5; /* F3 48 0F AE /2 */
}
static void on_pf(struct isr_frame *f)
{
    pf_cr2 = READ_CR(2);
    f->rip += 9; /* 64 48 8B 04 25 disp32 */
}

int main(void)
{
    idt_init();
    idt_set_handler(13, on_gp);
    idt_set_handler(14, on_pf);
    uint32_t r[4];
    cpuid(7, 0, r);
    GUEST_ASSERT_EQ(r[1] & 1, 1);
    WRITE_CR(4, READ_CR(4) | CR4_FSGSBASE);
    GUEST_ASSERT(READ_CR(4) & CR4_FSGSBASE);

    uint64_t base = (uint64_t)(uintptr_t)area, v, w;
    __asm__ volatile("wrfsbase %0" ::"r"(base));
    __asm__ volatile("wrgsbase %0" ::"r"(base + 16));
    cpuid(0, 0, r);
    outl(GUEST_PORT_SCRATCH, 1);
    __asm__ volatile("rdfsbase %0\n rdgsbase %1" : "=r"(v), "=r"(w));
    GUEST_ASSERT_EQ(v, base);
    GUEST_ASSERT_EQ(w, base + 16);
    GUEST_ASSERT_EQ(rdmsr(MSR_FS_BASE), base);
    GUEST_ASSERT_EQ(rdmsr(MSR_GS_BASE), base + 16);
    __asm__ volatile("mov %%fs:8, %0\n mov %%gs:8, %1" : "=r"(v), "=r"(w));
    GUEST_ASSERT_EQ(v, 0x2020);
    GUEST_ASSERT_EQ(w, 0x4040);

    /* a non-canonical base: #GP(0), the base unchanged */
    __asm__ volatile("wrfsbase %%rax" ::"a"(0x0000800000000000ULL));
    GUEST_ASSERT_EQ(gp_faults, 1);
    __asm__ volatile("rdfsbase %0" : "=r"(v));
    GUEST_ASSERT_EQ(v, base);

    /* back to 0: an FS access is an access to the offset itself */
    __asm__ volatile("wrfsbase %0" ::"r"(0ULL));
    v = 0;
    __asm__ volatile("mov %%fs:0x28, %%rax" : "+a"(v)::"memory");
    GUEST_ASSERT_EQ(pf_cr2, 0x28);
    GUEST_DONE();
}
