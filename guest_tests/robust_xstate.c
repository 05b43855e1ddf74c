/* robust_xstate.c - the guest's x87/SSE state (ST0-7, FCW, FSW, FTW, MXCSR, XMM0-15) survives
 * every way execution can leave guest code: a callout that continues (CPUID), an exit to the
 * VMM (OUT, IN), a fresh translation (a jump to code never run before), a guest exception
 * delivered through the guest's IDT (UD2), a store into the page being executed (self-modifying
 * code) and timer interrupts (kicks, deliveries, IRETQ).
 *
 * The state is loaded with FXRSTOR from a random-looking image, the transitions run with no
 * other x87/SSE instruction in between, and FXSAVE writes it back: every field but the last
 * instruction/data pointers (FIP/FDP/FOP, which name host addresses under dbt) must be equal.
 * Guest code is built -mgeneral-regs-only, so nothing else in the guest touches that state.
 * AVX is not in vmlab's virtual CPUID; its upper halves are checked by the dbt unit tests. */
#include "guest.h"

/* roundtrip(in, out): FXRSTOR in, the transitions, FXSAVE out. Writable and executable
 * section: the SMC step patches an immediate ahead of itself. */
__asm__(".pushsection .data.robust_xstate, \"awx\", @progbits\n"
        ".balign 64\n"
        "roundtrip:\n"
        "  push %rbx\n"
        "  push %rsi\n"
        "  fxrstor64 (%rdi)\n"
        /* 1. CPUID: a callout that continues in translated code */
        "  xor %eax, %eax\n xor %ecx, %ecx\n cpuid\n"
        /* 2. OUT and IN on the scratch port: exits to the VMM */
        "  mov $0x530, %edx\n mov $0x5a5a, %eax\n out %eax, %dx\n in %dx, %eax\n"
        /* 3. a jump to code that was never translated */
        "  jmp 1f\n 1:\n"
        /* 4. UD2: #UD through the guest IDT (the handler skips it) */
        "  ud2\n"
        /* 5. self-modifying code: patch the immediate of the MOV below, then run it */
        "  movl $0x77, 2f+1(%rip)\n"
        "2: mov $0x11, %eax\n"
        "  mov %eax, smc_seen(%rip)\n"
        /* 6. spin while timer interrupts arrive (IF is set by the caller) */
        "  mov $0x51c, %edx\n in %dx, %eax\n mov %eax, %ebx\n"
        "3: in %dx, %eax\n sub %ebx, %eax\n cmp $20000, %eax\n jb 3b\n"
        /* 7. HLT until the next tick */
        "  hlt\n"
        "  pop %rsi\n"
        "  fxsave64 (%rsi)\n"
        "  pop %rbx\n"
        "  ret\n"
        ".popsection\n");
void roundtrip(const void *in, void *out);
volatile uint32_t smc_seen;

static uint8_t image_in[512] __attribute__((aligned(64)));
static uint8_t image_out[512] __attribute__((aligned(64)));

static void skip_ud2(struct isr_frame *f)
{
    f->rip += 2;
}
static void on_timer(struct isr_frame *f)
{
    (void)f;
}

static uint64_t rng = 0x243F6A8885A308D3ULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(void)
{
    idt_init();
    idt_set_handler(6, skip_ud2);
    idt_set_handler(0x40, on_timer);
    /* FXSAVE layout: SDM vol. 1 table 10-2 */
    for (unsigned i = 0; i < sizeof(image_in); i += 8) {
        uint64_t v = next();
        memcpy(image_in + i, &v, 8);
    }
    uint16_t fcw = 0x0A7F;   /* rounding up, precision 53 bits, all exceptions masked */
    uint16_t fsw = 0x3800;   /* TOP = 7, no exception flags */
    uint8_t ftw = 0xFF;      /* all eight registers valid */
    uint32_t mxcsr = 0xDF80; /* FZ, rounding up, all exceptions masked (SDM vol. 1 10.2.3) */
    uint32_t mxcsr_mask = 0; /* ignored by FXRSTOR */
    memcpy(image_in + 0, &fcw, 2);
    memcpy(image_in + 2, &fsw, 2);
    image_in[4] = ftw;
    image_in[5] = 0;
    memset(image_in + 6, 0, 18); /* FOP, FIP, FDP */
    memcpy(image_in + 24, &mxcsr, 4);
    memcpy(image_in + 28, &mxcsr_mask, 4);
    for (unsigned r = 0; r < 8; r++) { /* ST0-7: normal extended-precision numbers */
        uint8_t *st = image_in + 32 + 16 * r;
        st[8] = (uint8_t)(r + 1);
        st[9] = 0x40;  /* exponent 0x40xx, sign 0 */
        st[7] |= 0x80; /* explicit integer bit: a normal number */
        memset(st + 10, 0, 6);
    }
    memset(image_in + 416, 0, 96);

    timer_start(0x40, 1000);
    sti();
    roundtrip(image_in, image_out);
    cli();
    timer_stop();

    GUEST_ASSERT_EQ(smc_seen, 0x77);
    GUEST_ASSERT(isr_count[6] == 1);
    GUEST_ASSERT(isr_count[0x40] >= 2);
    uint16_t fcw_out, fsw_out;
    uint32_t mxcsr_out;
    memcpy(&fcw_out, image_out, 2);
    memcpy(&fsw_out, image_out + 2, 2);
    memcpy(&mxcsr_out, image_out + 24, 4);
    GUEST_ASSERT_EQ(fcw_out, fcw);
    GUEST_ASSERT_EQ(fsw_out, fsw);
    GUEST_ASSERT_EQ(image_out[4], ftw);
    GUEST_ASSERT_EQ(mxcsr_out, mxcsr);
    for (unsigned r = 0; r < 8; r++)
        if (memcmp(image_out + 32 + 16 * r, image_in + 32 + 16 * r, 10)) {
            guest_printf("FAIL ST%u changed\n", r);
            guest_exit(1);
        }
    for (unsigned x = 0; x < 16; x++)
        if (memcmp(image_out + 160 + 16 * x, image_in + 160 + 16 * x, 16)) {
            guest_printf("FAIL XMM%u changed\n", x);
            guest_exit(1);
        }
    GUEST_DONE();
}
