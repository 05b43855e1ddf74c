/* redpill.c - lab 2 reference solution: tell trap_emulate, dbt and vtx apart from inside the
 * guest, with two structural tells and a timing one.
 *
 * 1. trap_emulate runs the guest at CPL 3: after CLI (emulated: the virtual IF is clear),
 *    PUSHF - sensitive but unprivileged, it does not trap - still shows the real IF = 1.
 *    dbt (PUSHF translated) and vtx (the guest's own CPL 0) show IF = 0.
 * 2. A binary translator runs copies of the guest's code, not the code itself: the first run
 *    of a block costs its translation (B, tens of ns per instruction). Fresh code (written
 *    now, never run: 64 blocks of 512 NOPs) is timed on its first and second run: on dbt
 *    the first is hundreds of times slower; on hardware (vtx) a few cache and TLB misses
 *    make it a few times slower at most. The threshold, 30x, sits in between with a wide
 *    margin both ways. (Under QEMU TCG - the nested kvm_amd run - the CPU itself is a binary
 *    translator, and this tell would call vtx "dbt": the red pill sees the outermost
 *    translator, as red pills do.)
 * Prints "REDPILL: <backend>" and the evidence. (A third tell was tried and dropped: single-
 * stepping with RFLAGS.TF. dbt honours a guest's TF like the hardware does.)
 */
#include "guest.h"

/* ---- 1. the IF that PUSHF shows after CLI ---- */
static bool pushf_leaks_real_if(void)
{
    cli();
    return pushf() & RFLAGS_IF;
}

/* ---- 2. first run of fresh code vs the second ---- */
#define BLOCKS 64
#define BLOCK_INSNS 512 /* NOPs in each block, then ADD and RET */
static uint8_t code[BLOCKS][BLOCK_INSNS + 16] __attribute__((aligned(4096)));

static uint64_t now_ns(void)
{
    return rdtsc(); /* ns-ish: virtual TSC (1 GHz) on trap_emulate/dbt, real TSC on vtx */
}

/* Ratio (x10) of the first run of BLOCKS fresh blocks to their second run. */
static uint64_t first_run_ratio_x10(void)
{
    for (unsigned b = 0; b < BLOCKS; b++) {
        for (unsigned i = 0; i < BLOCK_INSNS; i++)
            code[b][i] = 0x90;       /* nop */
        code[b][BLOCK_INSNS] = 0x48; /* add rax, 1: the block does something */
        code[b][BLOCK_INSNS + 1] = 0x83;
        code[b][BLOCK_INSNS + 2] = 0xc0;
        code[b][BLOCK_INSNS + 3] = 0x01;
        code[b][BLOCK_INSNS + 4] = 0xc3; /* ret */
    }
    uint64_t t[3];
    for (unsigned pass = 0; pass < 2; pass++) {
        t[pass] = now_ns();
        for (unsigned b = 0; b < BLOCKS; b++)
            __asm__ volatile("call *%0" ::"r"(code[b]) : "rax", "memory", "cc");
        t[pass + 1] = now_ns();
    }
    uint64_t first = t[1] - t[0], second = t[2] - t[1];
    guest_printf("evidence: first run of %u fresh blocks %llu, second %llu (TSC units)\n", BLOCKS,
                 (unsigned long long)first, (unsigned long long)second);
    return second ? first * 10 / second : 1000;
}

int main(void)
{
    idt_init();
    const char *backend;
    if (pushf_leaks_real_if()) {
        guest_printf("evidence: PUSHF after CLI shows IF = 1 (the real one: CPL 3)\n");
        backend = "trap_emulate";
    } else {
        uint64_t r = first_run_ratio_x10();
        guest_printf("evidence: first run / second run = %llu.%llu\n", (unsigned long long)(r / 10),
                     (unsigned long long)(r % 10));
        backend = r >= 300 ? "dbt" : "vtx";
    }
    guest_printf("REDPILL: %s\n", backend);
    return 0;
}
