/* robust_load_far_pointer.c - LFS, LGS and LSS load a selector from memory into FS, GS or SS
 * with the checks of any data-segment load, and the offset into a register (SDM vol. 2A
 * LDS/LES/LFS/LGS/LSS): a selector of the guest's own GDT loads FS with that descriptor's base,
 * which FS-relative accesses then use; a selector beyond the GDT limit is #GP(selector) and
 * loads nothing. Native at CPL 3 they would consult the host's GDT instead - on dbt a guest
 * LFS with the host's user data selector replaced the host's thread pointer and the process
 * died. */
#include "guest.h"

GUEST_EXPECT_XFAIL("trap_emulate", "", "exit:1 unexpected interrupt/exception vector 14",
                   "LFS/LGS/LSS are sensitive but unprivileged: at CPL 3 they load the host's "
                   "descriptor for the guest's selector without a trap");

#define MSR_FS_BASE 0xC0000100

/* m16:32: 64-bit operand size (REX.W, m16:64) exists on Intel only (AMD APM vol. 3 LFS) */
struct __attribute__((packed)) far_ptr {
    uint32_t offset;
    uint16_t selector;
};

static volatile uint64_t gp_error, gp_faults;
static uint64_t area[4] = {0x11, 0x22, 0x33, 0x44};

static void on_gp(struct isr_frame *f)
{
    gp_error = f->error_code;
    gp_faults++;
    f->rip += 3; /* LFS (%rdi), %ebx: 0F B4 1F */
}

int main(void)
{
    idt_init();
    idt_set_handler(13, on_gp);
    uint64_t *gdt = gdt_install(8);
    uint32_t base = (uint32_t)(uintptr_t)area;
    gdt[5] = gdt_descriptor(base, 0xFFFFF, 0x92, 0xC); /* data, writable, DPL 0: selector 0x28 */

    static struct far_ptr fp = {0x1234, 0x28};
    uint32_t r = 0;
    uint64_t v;
    __asm__ volatile("lfs (%1), %0" : "=b"(r) : "D"(&fp) : "memory");
    GUEST_ASSERT_EQ(r, 0x1234);
    uint16_t fs;
    __asm__ volatile("mov %%fs, %0" : "=r"(fs));
    GUEST_ASSERT_EQ(fs, 0x28);
    __asm__ volatile("mov %%fs:8, %0" : "=r"(v));
    GUEST_ASSERT_EQ(v, 0x22);
    GUEST_ASSERT_EQ(rdmsr(MSR_FS_BASE), base);

    fp.offset = 0x5678;
    __asm__ volatile("lgs (%1), %0" : "=b"(r) : "D"(&fp) : "memory");
    GUEST_ASSERT_EQ(r, 0x5678);
    __asm__ volatile("mov %%gs:16, %0" : "=r"(v));
    GUEST_ASSERT_EQ(v, 0x33);

    /* beyond the GDT limit (8 entries): #GP with the selector as error code, FS unchanged */
    fp.selector = 0x4b;
    r = 0x9999;
    __asm__ volatile("lfs (%1), %0" : "+b"(r) : "D"(&fp) : "memory");
    GUEST_ASSERT_EQ(gp_faults, 1);
    GUEST_ASSERT_EQ(gp_error, 0x48);
    GUEST_ASSERT_EQ(r, 0x9999);
    __asm__ volatile("mov %%fs, %0" : "=r"(fs));
    GUEST_ASSERT_EQ(fs, 0x28);
    GUEST_DONE();
}
