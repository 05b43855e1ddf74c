/* robust_segment_bases.c - FS and GS bases are guest state. At reset both are 0 (SDM vol. 3A
 * 3.4.4: in 64-bit mode the base of FS/GS comes from the descriptor, then the MSRs), so
 * %fs:0x28 is guest-linear 0x28, outside guest memory: #PF with CR2 0x28, never the host
 * thread's stack-protector canary at the host's %fs:0x28 (dbt read and wrote it: issue 10).
 * The same through GS, through bases set with WRMSR (IA32_FS_BASE / IA32_GS_BASE) and through
 * SWAPGS; a base inside guest RAM or MMIO works. */
#include "guest.h"

#define MSR_FS_BASE 0xC0000100

static volatile uint64_t pf_count, pf_cr2, pf_error;
static volatile uint64_t resume_at;

static void on_pf(struct isr_frame *f)
{
    pf_count++;
    pf_cr2 = READ_CR(2);
    pf_error = f->error_code;
    f->rip = resume_at;
}

/* Run one FS/GS-relative access; a #PF resumes after it. */
#define ACCESS(text, ...)                                                                          \
    do {                                                                                           \
        uint64_t _after;                                                                           \
        __asm__ volatile("lea 2f(%%rip), %0\n\t"                                                   \
                         "mov %0, resume_at(%%rip)\n\t" text "\n"                                  \
                         "2:"                                                                      \
                         : "=&r"(_after)__VA_ARGS__);                                              \
    } while (0)

static void expect_pf(const char *what, uint64_t cr2, bool write)
{
    guest_printf("%s: %llu #PF, CR2 %#llx, error %#llx\n", what, (unsigned long long)pf_count,
                 (unsigned long long)pf_cr2, (unsigned long long)pf_error);
    GUEST_ASSERT_EQ(pf_count, 1);
    GUEST_ASSERT_EQ(pf_cr2, cr2);
    GUEST_ASSERT_EQ(pf_error & 2, write ? 2 : 0); /* W/R */
    GUEST_ASSERT_EQ(pf_error & 4, 0);             /* U/S: the guest runs at CPL 0 */
    pf_count = 0;
}

static volatile uint64_t cell = 0x1122334455667788ULL;

int main(void)
{
    idt_init();
    idt_set_handler(14, on_pf);
    uint64_t v = 0;

    ACCESS("mov %%fs:0x28, %%rbx", : : "rbx", "memory");
    expect_pf("read %fs:0x28 at reset", 0x28, false);
    ACCESS("mov %%rbx, %%fs:0x28", : : "memory");
    expect_pf("write %fs:0x28 at reset", 0x28, true);
    ACCESS("mov %%gs:0x28, %%rbx", : : "rbx", "memory");
    expect_pf("read %gs:0x28 at reset", 0x28, false);
    ACCESS("mov %%rbx, %%gs:0x30", : : "memory");
    expect_pf("write %gs:0x30 at reset", 0x30, true);

    /* Bases set through the MSRs: 0x1000 is below every host's mmap_min_addr. */
    wrmsr(MSR_FS_BASE, 0x1000);
    ACCESS("mov %%fs:0x8, %%rbx", : : "rbx", "memory");
    expect_pf("read %fs:8 with FS base 0x1000", 0x1008, false);
    wrmsr(MSR_GS_BASE, 0x2000);
    ACCESS("mov %%rbx, %%gs:0x10", : : "memory");
    expect_pf("write %gs:0x10 with GS base 0x2000", 0x2010, true);

    /* SWAPGS brings IA32_KERNEL_GS_BASE in. */
    wrmsr(MSR_KERNEL_GS_BASE, 0x3000);
    wrmsr(MSR_GS_BASE, 0);
    ACCESS("swapgs\n\tmov %%gs:0x18, %%rbx", : : "rbx", "memory");
    expect_pf("read %gs:0x18 after SWAPGS (base 0x3000)", 0x3018, false);
    __asm__ volatile("swapgs" ::: "memory");
    GUEST_ASSERT_EQ(rdmsr(MSR_GS_BASE), 0);

    /* A base inside guest RAM: the access works. */
    wrmsr(MSR_FS_BASE, (uint64_t)&cell - 0x10);
    __asm__ volatile("mov %%fs:0x10, %0" : "=r"(v)::"memory");
    GUEST_ASSERT_EQ(v, 0x1122334455667788ULL);
    /* ... and inside the MMIO window: an MMIO access. */
    *(volatile uint64_t *)GUEST_MMIO_SCRATCH = 0xfeedfacecafebeefULL;
    wrmsr(MSR_GS_BASE, GUEST_MMIO_SCRATCH);
    __asm__ volatile("mov %%gs:0, %0" : "=r"(v)::"memory");
    GUEST_ASSERT_EQ(v, 0xfeedfacecafebeefULL);
    wrmsr(MSR_FS_BASE, 0);
    wrmsr(MSR_GS_BASE, 0);
    GUEST_DONE();
}
