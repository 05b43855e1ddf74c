/* mov_cr_faults.c - MOV to a control register checks the value it loads (Intel SDM vol. 2B,
 * "MOV-Move to/from Control Registers", 64-Bit Mode Exceptions): #GP(0) for CR0 with PG but
 * not PE, CR0 without PG in long mode, CR0 with NW but not CD, CR4 without PAE in long mode,
 * CR8 above 15; #UD for a control register that does not exist (CR5). A faulting MOV leaves
 * the register unchanged. Privileged: emulated on trap_emulate and dbt, done by KVM / the CPU
 * on vtx. Not here: reserved bits 63:32 of CR0 and CR4 - the SDM's #GP(0) is not raised by
 * PVM nor by QEMU TCG's SVM (the nested kvm_amd run); labs/01-trap-emulate checks them on
 * the emulating backends only. */
#include "guest.h"

static volatile uint64_t resume_at;
static volatile uint64_t last_vector, fault_count;

static void on_fault(struct isr_frame *f)
{
    last_vector = f->vector;
    fault_count++;
    f->rip = resume_at;
}

/* Write v to CR<n>; return the vector it raised, or 0xFF if it did not fault. */
#define WRITE_CR_FAULT(n, v)                                                                       \
    ({                                                                                             \
        uint64_t _before = fault_count;                                                            \
        __asm__ volatile("leaq 1f(%%rip), %%r11\n\t"                                               \
                         "movq %%r11, %0\n\t"                                                      \
                         "movq %1, %%cr" #n "\n"                                                   \
                         "1:"                                                                      \
                         : "=m"(resume_at)                                                         \
                         : "r"((uint64_t)(v))                                                      \
                         : "r11", "memory");                                                       \
        fault_count == _before ? 0xFFu : (unsigned)last_vector;                                    \
    })

int main(void)
{
    idt_init();
    idt_set_handler(6, on_fault);
    idt_set_handler(13, on_fault);
    uint64_t cr0 = READ_CR(0), cr4 = READ_CR(4);

    GUEST_ASSERT_EQ(WRITE_CR_FAULT(0, cr0 & ~1ULL), 13);         /* PG without PE */
    GUEST_ASSERT_EQ(WRITE_CR_FAULT(0, cr0 & ~(1ULL << 31)), 13); /* no PG in long mode */
    GUEST_ASSERT_EQ(WRITE_CR_FAULT(0, cr0 | (1ULL << 29)), 13);  /* NW without CD */
    GUEST_ASSERT_EQ(READ_CR(0), cr0);                            /* unchanged */
    GUEST_ASSERT_EQ(WRITE_CR_FAULT(4, cr4 & ~(1ULL << 5)), 13);  /* no PAE in long mode */
    GUEST_ASSERT_EQ(READ_CR(4), cr4);
    GUEST_ASSERT_EQ(WRITE_CR_FAULT(8, 16), 13);   /* TPR is 4 bits */
    GUEST_ASSERT_EQ(WRITE_CR_FAULT(8, 15), 0xFF); /* ... 15 is fine */
    GUEST_ASSERT_EQ(READ_CR(8), 15);
    WRITE_CR(8, 0);
    GUEST_ASSERT_EQ(WRITE_CR_FAULT(5, 0), 6);          /* no CR5 */
    GUEST_ASSERT_EQ(WRITE_CR_FAULT(0, cr0 | 8), 0xFF); /* TS: fine */
    GUEST_ASSERT_EQ(READ_CR(0), cr0 | 8);
    WRITE_CR(0, cr0);
    GUEST_ASSERT_EQ(fault_count, 6);
    GUEST_DONE();
}
