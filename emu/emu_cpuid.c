/* emu_cpuid.c - vmlab's virtual CPUID: the same CPU on every backend.
 *
 * A guest must not learn which host it runs on (a sensitive instruction in Popek & Goldberg's
 * sense). vmlab's virtual CPU has its own vendor string and a small, fixed feature set that
 * every backend can honour (KVM receives the same leaves through KVM_SET_CPUID2). Leaf layout:
 * Intel SDM vol. 2A, CPUID; AMD APM vol. 3, appendix E.
 */
#include <string.h>

#include "emu_families.h"

/* CPUID.1:EDX / ECX feature bits (SDM vol. 2A, tables 3-10 and 3-11). */
#define F1_EDX_FPU (1u << 0)
#define F1_EDX_TSC (1u << 4)
#define F1_EDX_MSR (1u << 5)
#define F1_EDX_PAE (1u << 6)
#define F1_EDX_CX8 (1u << 8)
#define F1_EDX_PGE (1u << 13)
#define F1_EDX_CMOV (1u << 15)
#define F1_EDX_PAT (1u << 16)
#define F1_EDX_CLFSH (1u << 19)
#define F1_EDX_MMX (1u << 23)
#define F1_EDX_FXSR (1u << 24)
#define F1_EDX_SSE (1u << 25)
#define F1_EDX_SSE2 (1u << 26)
#define F1_ECX_SSE3 (1u << 0)
#define F1_ECX_SSSE3 (1u << 9)
#define F1_ECX_CX16 (1u << 13)
#define F1_ECX_SSE41 (1u << 19)
#define F1_ECX_SSE42 (1u << 20)
#define F1_ECX_POPCNT (1u << 23)
#define F1_ECX_HYPERVISOR (1u << 31)
/* CPUID.80000001h (AMD APM vol. 3, E.4.2; SDM vol. 2A). */
/* CPUID.(EAX=7,ECX=0):EBX (SDM vol. 2A, table 3-8). */
#define F7_EBX_FSGSBASE (1u << 0)
#define E1_ECX_LAHF (1u << 0)
#define E1_EDX_SYSCALL (1u << 11)
#define E1_EDX_NX (1u << 20)
#define E1_EDX_RDTSCP (1u << 27)
#define E1_EDX_LM (1u << 29)

static const uint32_t defined_leaves[][2] = {
    {0, 0},          {1, 0},          {7, 0},          {0x40000000, 0}, {0x80000000, 0},
    {0x80000001, 0}, {0x80000002, 0}, {0x80000003, 0}, {0x80000004, 0}, {0x80000008, 0},
};

static void put_string(uint32_t out[4], const char *s16)
{
    memcpy(out, s16, 16);
}

void emu_cpuid(const struct vcpu_state *state, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
    (void)state;
    static const char brand[48] = "vmlab virtual CPU";
    memset(out, 0, 4 * sizeof(uint32_t));
    switch (leaf) {
    case 0:
        out[0] = 7;                               /* highest basic leaf */
        memcpy(&out[1], EMU_CPUID_VENDOR, 4);     /* EBX */
        memcpy(&out[3], &EMU_CPUID_VENDOR[4], 4); /* EDX */
        memcpy(&out[2], &EMU_CPUID_VENDOR[8], 4); /* ECX */
        break;
    case 1:
        out[0] = 0x00000F01; /* family 15, model 0, stepping 1: a CPU no one else claims */
        out[1] = 8u << 8;    /* CLFLUSH line size 8 * 8 bytes, APIC id 0 */
        out[2] = F1_ECX_SSE3 | F1_ECX_SSSE3 | F1_ECX_CX16 | F1_ECX_SSE41 | F1_ECX_SSE42 |
                 F1_ECX_POPCNT | F1_ECX_HYPERVISOR;
        out[3] = F1_EDX_FPU | F1_EDX_TSC | F1_EDX_MSR | F1_EDX_PAE | F1_EDX_CX8 | F1_EDX_PGE |
                 F1_EDX_CMOV | F1_EDX_PAT | F1_EDX_CLFSH | F1_EDX_MMX | F1_EDX_FXSR | F1_EDX_SSE |
                 F1_EDX_SSE2;
        break;
    case 7:
        /* FSGSBASE: a guest may set CR4.FSGSBASE and use RD/WRFSBASE and RD/WRGSBASE, on
         * every backend (KVM refuses the CR4 bit unless CPUID has it); without CR4.FSGSBASE
         * they are #UD - except natively on trap_emulate, where the host enabled them for
         * CPL 3 (sensitive but unprivileged: emu_class.h). */
        if (subleaf == 0)
            out[1] = F7_EBX_FSGSBASE;
        break;
    case 0x40000000: /* hypervisor leaf: max hypervisor leaf + signature */
        out[0] = 0x40000000;
        memcpy(&out[1], "vmla", 4);
        memcpy(&out[2], "b vm", 4);
        memcpy(&out[3], "lab ", 4);
        break;
    case 0x80000000:
        out[0] = 0x80000008;
        break;
    case 0x80000001:
        out[2] = E1_ECX_LAHF;
        out[3] = E1_EDX_SYSCALL | E1_EDX_NX | E1_EDX_RDTSCP | E1_EDX_LM;
        break;
    case 0x80000002:
    case 0x80000003:
    case 0x80000004:
        put_string(out, brand + 16 * (leaf - 0x80000002));
        break;
    case 0x80000008:
        out[0] = (48u << 8) | 40u; /* 48-bit linear, 40-bit physical addresses */
        break;
    default:
        break; /* unknown leaves: all zero */
    }
}

unsigned emu_cpuid_leaves(uint32_t (*leaves)[2], unsigned max)
{
    unsigned n = sizeof(defined_leaves) / sizeof(defined_leaves[0]);
    if (n > max)
        n = max;
    memcpy(leaves, defined_leaves, n * sizeof(defined_leaves[0]));
    return n;
}

void emu_exec_cpuid(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                    struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    uint32_t regs[4];
    emu_cpuid(s, (uint32_t)s->gpr[X86_RAX], (uint32_t)s->gpr[X86_RCX], regs);
    emu_note(out, "leaf", (uint32_t)s->gpr[X86_RAX], regs[0]);
    s->gpr[X86_RAX] = regs[0];
    s->gpr[X86_RBX] = regs[1];
    s->gpr[X86_RCX] = regs[2];
    s->gpr[X86_RDX] = regs[3];
    emu_advance(ctx, insn, out);
}
