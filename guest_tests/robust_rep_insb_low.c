/* robust_rep_insb_low.c - REP INSB whose destination (ES:RDI) lies below the guest space, at
 * an address the guest's page tables do not map: #PF with CR2 = that address (a write, error
 * code W set) before any byte is stored, RCX and RDI unchanged - never a spin and never a host
 * access. Intel SDM vol. 2A INS: the first iteration's write faults; vol. 3A 4.7. */
#include "guest.h"

static volatile uint64_t fault_cr2, fault_error;
static volatile uint64_t fault_rcx, fault_rdi;

static void on_pf(struct isr_frame *f)
{
    fault_cr2 = READ_CR(2);
    fault_error = f->error_code;
    fault_rcx = f->rcx;
    fault_rdi = f->rdi;
    f->rip += 2; /* F3 6C */
}

int main(void)
{
    idt_init();
    idt_set_handler(14, on_pf);
    for (int i = 0; i < 8; i++)
        outb(GUEST_PORT_FIFO, (uint8_t)(0x40 + i));
    uint64_t rcx = 4, rdi = 0x1000;
    __asm__ volatile("cld\n rep insb" : "+c"(rcx), "+D"(rdi) : "d"(GUEST_PORT_FIFO) : "memory");
    GUEST_ASSERT_EQ(isr_count[14], 1);
    GUEST_ASSERT_EQ(fault_cr2, 0x1000);
    GUEST_ASSERT_EQ(fault_error & 2, 2);
    GUEST_ASSERT_EQ(fault_rcx, 4);
    GUEST_ASSERT_EQ(fault_rdi, 0x1000);
    GUEST_DONE();
}
