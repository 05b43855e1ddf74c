/* robust_fetch_end_of_ram.c - an instruction that starts in the last byte of RAM and continues
 * into the MMIO window, where nothing can be fetched: #PF on the instruction fetch (error code
 * I/D set) with CR2 = the first byte that could not be fetched, the end of RAM; the saved RIP
 * is the instruction's start. Intel SDM vol. 3A 4.7 (page-fault error code), 6.15 (#PF: "CR2
 * ... the linear address that generated the exception"). */
#include "guest.h"

GUEST_EXPECT_XFAIL("vtx", "", "internal",
                   "KVM cannot fetch an instruction from guest-physical memory without a memory "
                   "slot (its emulator treats it as MMIO and fails): emulation failure instead "
                   "of #PF (PVM and kvm_amd alike)");

#define RAM_END 0x44000000ULL

static volatile uint64_t fault_cr2, fault_error, fault_rip;

void back(void);
__asm__(".pushsection .text\n back: ret\n .popsection");

static void on_pf_ret(struct isr_frame *f)
{
    fault_cr2 = READ_CR(2);
    fault_error = f->error_code;
    fault_rip = f->rip;
    f->rip = (uint64_t)(uintptr_t)back; /* pops the return address the CALL pushed */
}

int main(void)
{
    idt_init();
    idt_set_handler(14, on_pf_ret);
    /* 48 B8 imm64 (MOV RAX, imm64), 10 bytes: only its REX prefix fits in RAM */
    volatile uint8_t *last = (volatile uint8_t *)(RAM_END - 1);
    *last = 0x48;
    /* RAM_END - 1 is the top byte of the initial stack slot, which crt0's frame does not use
     * past this point (the run ends in main) */
    void (*fn)(void) = (void (*)(void))(uintptr_t)(RAM_END - 1);
    fn();
    GUEST_ASSERT_EQ(isr_count[14], 1);
    GUEST_ASSERT_EQ(fault_rip, RAM_END - 1);
    GUEST_ASSERT_EQ(fault_cr2, RAM_END);
    GUEST_ASSERT_EQ(fault_error & 0x10, 0x10); /* instruction fetch */
    GUEST_ASSERT_EQ(fault_error & 0x2, 0);
    GUEST_DONE();
}
