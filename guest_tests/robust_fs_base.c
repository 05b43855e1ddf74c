/* robust_fs_base.c - the FS and GS bases are the guest's own: with the reset value 0, an
 * access through FS or GS to offset 0x28 is an access to linear address 0x28, which the
 * guest's page tables do not map: #PF with CR2 = 0x28 (never the host's thread-local storage,
 * where the host's stack-protector canary lives at %fs:0x28). Bases written with WRMSR
 * (IA32_FS_BASE, IA32_GS_BASE) and swapped with SWAPGS apply to the guest's next accesses,
 * also after callouts and VMM exits. SDM vol. 3A 3.4.4 (segment bases in 64-bit mode), 4.7. */
#include "guest.h"

#define MSR_FS_BASE 0xC0000100

static volatile uint64_t fault_cr2, fault_error, faults;
static volatile unsigned skip_bytes;

static void on_pf(struct isr_frame *f)
{
    fault_cr2 = READ_CR(2);
    fault_error = f->error_code;
    faults++;
    f->rip += skip_bytes;
}

static uint64_t area[8] = {0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666, 0x7777, 0x8888};

int main(void)
{
    idt_init();
    idt_set_handler(14, on_pf);

    /* reset bases (0): reads and writes through FS and GS fault at the offset itself */
    uint64_t v = 0x5a5a;
    skip_bytes = 9; /* 64 48 8B 1C 25 disp32 */
    __asm__ volatile("mov %%fs:0x28, %0" : "+r"(v)::"memory");
    GUEST_ASSERT_EQ(faults, 1);
    GUEST_ASSERT_EQ(fault_cr2, 0x28);
    GUEST_ASSERT_EQ(fault_error & 2, 0); /* a read */
    GUEST_ASSERT_EQ(v, 0x5a5a);          /* the load did not happen */
    __asm__ volatile("mov %0, %%fs:0x28" ::"r"(v) : "memory");
    GUEST_ASSERT_EQ(faults, 2);
    GUEST_ASSERT_EQ(fault_cr2, 0x28);
    GUEST_ASSERT_EQ(fault_error & 2, 2); /* a write */
    __asm__ volatile("mov %%gs:0x30, %0" : "+r"(v)::"memory");
    GUEST_ASSERT_EQ(faults, 3);
    GUEST_ASSERT_EQ(fault_cr2, 0x30);

    /* bases set with WRMSR apply to the next accesses, across callouts and exits */
    wrmsr(MSR_FS_BASE, (uint64_t)(uintptr_t)area);
    wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)&area[4]);
    uint32_t r[4];
    cpuid(0, 0, r);
    outl(GUEST_PORT_SCRATCH, 1);
    uint64_t a, b;
    __asm__ volatile("mov %%fs:8, %0\n mov %%gs:8, %1" : "=r"(a), "=r"(b));
    GUEST_ASSERT_EQ(a, 0x2222);
    GUEST_ASSERT_EQ(b, 0x6666);
    __asm__ volatile("movq $0x9999, %%fs:16" ::: "memory");
    GUEST_ASSERT_EQ(area[2], 0x9999);
    GUEST_ASSERT_EQ(rdmsr(MSR_FS_BASE), (uint64_t)(uintptr_t)area);

    /* SWAPGS exchanges GS.base with IA32_KERNEL_GS_BASE */
    wrmsr(MSR_KERNEL_GS_BASE, (uint64_t)(uintptr_t)&area[6]);
    __asm__ volatile("swapgs\n mov %%gs:0, %0\n swapgs\n mov %%gs:0, %1" : "=r"(a), "=r"(b));
    GUEST_ASSERT_EQ(a, 0x7777);
    GUEST_ASSERT_EQ(b, 0x5555);

    /* back to 0: faults again */
    wrmsr(MSR_FS_BASE, 0);
    skip_bytes = 9;
    __asm__ volatile("mov %%fs:0x28, %0" : "+r"(v)::"memory");
    GUEST_ASSERT_EQ(faults, 4);
    GUEST_ASSERT_EQ(fault_cr2, 0x28);
    GUEST_DONE();
}
