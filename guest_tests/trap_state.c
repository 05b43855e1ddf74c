/* trap_state.c - the guest's registers, arithmetic flags and x87/SSE state survive the emulated
 * instructions that are cheapest to emulate: CLI, STI and RDTSC (on trap_emulate handled in the
 * signal entry itself; RDTSC only where the host lets it trap), MOV to CR3 and LGDT (the general
 * path); on trap_emulate all five resume the guest without rt_sigreturn, restoring what it
 * would. And the virtual IF they set is the one an interrupt frame shows.
 *
 * roundtrip(regs, fx_in, fx_out) loads RAX..R15 (not RSP) from regs[], the x87/SSE state from
 * fx_in and the arithmetic flags from regs[16], runs the instructions, and stores the
 * registers back into regs[] (RSP excluded), the flags into regs[16] and the x87/SSE state
 * into fx_out. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "vtx", "kvm_pvm", "internal",
    "this host's KVM is PVM (software, no VT-x/AMD-V): it cannot emulate INT n for a "
    "guest that is not PVM-aware (KVM internal error, emulation failure)");

__asm__(".text\n"
        "roundtrip:\n"
        "  push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
        "  push %rdi\n" /* regs[] */
        "  fxrstor64 (%rsi)\n"
        "  push %rdx\n"              /* fx_out */
        "  push 128(%rdi)\n popfq\n" /* the flags pattern */
        "  mov 0(%rdi), %rax\n mov 8(%rdi), %rcx\n mov 16(%rdi), %rdx\n mov 24(%rdi), %rbx\n"
        "  mov 40(%rdi), %rbp\n mov 48(%rdi), %rsi\n mov 64(%rdi), %r8\n mov 72(%rdi), %r9\n"
        "  mov 80(%rdi), %r10\n mov 88(%rdi), %r11\n mov 96(%rdi), %r12\n mov 104(%rdi), %r13\n"
        "  mov 112(%rdi), %r14\n mov 120(%rdi), %r15\n mov 56(%rdi), %rdi\n"
        "  cli\n sti\n cli\n"
        "  mov %rax, %cr3\n" /* RAX holds the current CR3 (the caller saw to it) */
        "  lgdt gdtr_copy(%rip)\n"
        "  sti\n cli\n"
        "  push %rax\n push %rdx\n rdtsc\n pop %rdx\n pop %rax\n" /* all but EDX:EAX survive */
        "  pushfq\n"
        "  push %rdi\n mov 16(%rsp), %rdi\n" /* fx_out */
        "  fxsave64 (%rdi)\n"
        "  mov 24(%rsp), %rdi\n" /* regs[] */
        "  mov %rax, 0(%rdi)\n mov %rcx, 8(%rdi)\n mov %rdx, 16(%rdi)\n mov %rbx, 24(%rdi)\n"
        "  mov %rbp, 40(%rdi)\n mov %rsi, 48(%rdi)\n mov %r8, 64(%rdi)\n mov %r9, 72(%rdi)\n"
        "  mov %r10, 80(%rdi)\n mov %r11, 88(%rdi)\n mov %r12, 96(%rdi)\n mov %r13, 104(%rdi)\n"
        "  mov %r14, 112(%rdi)\n mov %r15, 120(%rdi)\n"
        "  pop %rax\n mov %rax, 56(%rdi)\n"  /* the guest's RDI */
        "  pop %rax\n mov %rax, 128(%rdi)\n" /* the flags */
        "  add $16, %rsp\n"
        "  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n"
        "  ret\n");
void roundtrip(uint64_t *regs, const void *fx_in, void *fx_out);

struct __attribute__((packed)) gdtr_image {
    uint16_t limit;
    uint64_t base;
};
struct gdtr_image gdtr_copy;

static uint64_t regs_in[17], regs[17];
static uint8_t fx_in[512] __attribute__((aligned(64)));
static uint8_t fx_out[512] __attribute__((aligned(64)));
static volatile uint64_t seen_rflags;

static void on_0x30(struct isr_frame *f)
{
    seen_rflags = f->rflags;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

#define IF_BIT 0x200ULL
#define ARITH_FLAGS 0x8D5ULL /* CF PF AF ZF SF OF */

int main(void)
{
    idt_init();
    idt_set_handler(0x30, on_0x30);

    /* the virtual IF, as an interrupt frame shows it */
    cli();
    __asm__ volatile("int $0x30" ::: "memory");
    GUEST_ASSERT_EQ(seen_rflags & IF_BIT, 0);
    __asm__ volatile("sti\n nop\n int $0x30" ::: "memory");
    GUEST_ASSERT_EQ(seen_rflags & IF_BIT, IF_BIT);
    __asm__ volatile("cli\n int $0x30" ::: "memory");
    GUEST_ASSERT_EQ(seen_rflags & IF_BIT, 0);

    /* registers, flags and x87/SSE state across the emulated instructions */
    for (unsigned i = 0; i < 512; i += 8) {
        uint64_t v = next();
        memcpy(fx_in + i, &v, 8);
    }
    uint16_t fcw = 0x0A7F;   /* all x87 exceptions masked */
    uint16_t fsw = 0x3800;   /* TOP = 7, no exception flags */
    uint32_t mxcsr = 0xDF80; /* FZ, rounding up, all SSE exceptions masked */
    memcpy(fx_in + 0, &fcw, 2);
    memcpy(fx_in + 2, &fsw, 2);
    fx_in[4] = 0xFF; /* ST0-7 valid */
    fx_in[5] = 0;
    memset(fx_in + 6, 0, 18); /* FOP, FIP, FDP */
    memcpy(fx_in + 24, &mxcsr, 4);
    memset(fx_in + 28, 0, 4);          /* MXCSR_MASK: ignored by FXRSTOR */
    for (unsigned r = 0; r < 8; r++) { /* ST0-7: normal extended-precision numbers */
        uint8_t *st = fx_in + 32 + 16 * r;
        st[7] |= 0x80;
        st[8] = (uint8_t)(r + 1);
        st[9] = 0x40;
        memset(st + 10, 0, 6);
    }
    memset(fx_in + 416, 0, 96);
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    __asm__ volatile("sgdt %0" : "=m"(gdtr_copy));
    for (unsigned i = 0; i < 16; i++)
        regs_in[i] = next();
    regs_in[0] = cr3;                /* MOV RAX to CR3 writes the same value back */
    regs_in[16] = 0x2 | ARITH_FLAGS; /* every arithmetic flag set */
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            regs_in[16] = 0x2; /* and every one clear */
        memcpy(regs, regs_in, sizeof(regs));
        roundtrip(regs, fx_in, fx_out);
        for (unsigned i = 0; i < 16; i++)
            if (i != 4 && regs[i] != regs_in[i]) {
                guest_printf("FAIL register %u: %lx, was %lx\n", i, (unsigned long)regs[i],
                             (unsigned long)regs_in[i]);
                guest_exit(1);
            }
        GUEST_ASSERT_EQ(regs[16] & ARITH_FLAGS, regs_in[16] & ARITH_FLAGS);
        GUEST_ASSERT(!memcmp(fx_out, fx_in, 6));           /* FCW, FSW, FTW */
        GUEST_ASSERT(!memcmp(fx_out + 24, fx_in + 24, 4)); /* MXCSR */
        for (unsigned r = 0; r < 8; r++)
            GUEST_ASSERT(!memcmp(fx_out + 32 + 16 * r, fx_in + 32 + 16 * r, 10));
        for (unsigned x = 0; x < 16; x++)
            GUEST_ASSERT(!memcmp(fx_out + 160 + 16 * x, fx_in + 160 + 16 * x, 16));
    }
    GUEST_DONE();
}
