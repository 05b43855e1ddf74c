/* robust_popf_flags.c - the guest sets RFLAGS.AC, NT, ID and DF with POPF and keeps running
 * through callouts, VMM exits, fresh translations, exceptions and interrupts: host code must
 * not run with them (an unaligned host access with AC set is #AC, SIGBUS; IRETQ with NT set
 * is #GP), and the guest must see exactly the flags it set (PUSHF). At CPL 0, which is what
 * the guest believes it runs at, AC never makes an access fault (SDM vol. 3A 6.15, #AC: only
 * at CPL 3), and CR0.AM is clear anyway. */
#include "guest.h"

#define RFLAGS_DF (1ULL << 10)
#define RFLAGS_NT (1ULL << 14)
#define RFLAGS_AC (1ULL << 18)
#define RFLAGS_ID (1ULL << 21)
#define STICKY (RFLAGS_DF | RFLAGS_NT | RFLAGS_AC | RFLAGS_ID)

static void skip_ud2(struct isr_frame *f)
{
    f->rip += 2;
}
static void on_timer(struct isr_frame *f)
{
    (void)f;
}

static volatile uint8_t buffer[64] __attribute__((aligned(16)));

/* With `flags` in RFLAGS: CPUID, OUT/IN, a fresh block, UD2 through the IDT, then read RFLAGS
 * back. DF is cleared just before C code runs again (the ABI wants it clear). */
static uint64_t with_flags(uint64_t flags)
{
    uint64_t out;
    __asm__ volatile("push %1\n popfq\n"
                     "xor %%eax, %%eax\n xor %%ecx, %%ecx\n cpuid\n"
                     "mov $0x530, %%edx\n out %%eax, %%dx\n in %%dx, %%eax\n"
                     "jmp 1f\n 1:\n"
                     "ud2\n"
                     "movl $0x11223344, buffer+1(%%rip)\n" /* unaligned store */
                     "mov buffer+3(%%rip), %%rax\n"        /* unaligned load */
                     "pushfq\n pop %0\n cld\n"
                     : "=r"(out)
                     : "r"(flags | 2)
                     : "rax", "rbx", "rcx", "rdx", "memory", "cc");
    return out;
}

static bool ticks3(void)
{
    return isr_count[0x40] >= 3;
}

int main(void)
{
    idt_init();
    idt_set_handler(6, skip_ud2);
    idt_set_handler(0x40, on_timer);

    for (unsigned i = 0; i < 16; i++) {
        uint64_t want = (i & 1 ? RFLAGS_AC : 0) | (i & 2 ? RFLAGS_NT : 0) |
                        (i & 4 ? RFLAGS_ID : 0) | (i & 8 ? RFLAGS_DF : 0);
        GUEST_ASSERT_EQ(with_flags(want) & STICKY, want);
        GUEST_ASSERT_EQ(isr_count[6], i + 1);
    }

    /* AC and NT set for a long stretch of guest C code: console output, interrupts */
    popf((pushf() | RFLAGS_AC | RFLAGS_NT) & ~RFLAGS_IF);
    guest_printf("AC and NT set: %lx\n", (unsigned long)(pushf() & (RFLAGS_AC | RFLAGS_NT)));
    timer_start(0x40, 500);
    sti();
    GUEST_ASSERT(spin_until(ticks3, 500000));
    cli();
    timer_stop();
    GUEST_ASSERT_EQ(pushf() & (RFLAGS_AC | RFLAGS_NT), RFLAGS_AC | RFLAGS_NT);
    /* the interrupt frames saved the flags the guest had (IRETQ put them back) */
    GUEST_ASSERT_EQ(buffer[1], 0x44);
    popf(pushf() & ~(RFLAGS_AC | RFLAGS_NT | RFLAGS_ID));
    GUEST_ASSERT_EQ(pushf() & STICKY, 0);
    GUEST_DONE();
}
