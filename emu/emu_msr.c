/* emu_msr.c - model-specific registers and the segment bases behind them: RDMSR, WRMSR,
 * RDPMC, SWAPGS and RD/WR{FS,GS}BASE.
 *
 * The virtual CPU has the MSRs a small kernel touches (struct vcpu_state); any other MSR
 * number is #GP(0), as on a CPU that does not implement it (SDM vol. 2B RDMSR).
 */
#include "emu_families.h"

/* MSR numbers (Intel SDM vol. 4, table 2-2). */
enum {
    MSR_TSC = 0x10,
    MSR_APIC_BASE = 0x1B,
    MSR_MTRRCAP = 0xFE,
    MSR_SYSENTER_CS = 0x174,
    MSR_SYSENTER_ESP = 0x175,
    MSR_SYSENTER_EIP = 0x176,
    MSR_MISC_ENABLE = 0x1A0,
    MSR_PAT = 0x277,
    MSR_MTRR_DEF_TYPE = 0x2FF,
    MSR_EFER = 0xC0000080,
    MSR_STAR = 0xC0000081,
    MSR_LSTAR = 0xC0000082,
    MSR_CSTAR = 0xC0000083,
    MSR_SFMASK = 0xC0000084,
    MSR_FS_BASE = 0xC0000100,
    MSR_GS_BASE = 0xC0000101,
    MSR_KERNEL_GS_BASE = 0xC0000102,
    MSR_TSC_AUX = 0xC0000103,
};

static uint64_t *msr_slot(struct vcpu_state *s, uint32_t msr)
{
    switch (msr) {
    case MSR_APIC_BASE:
        return &s->apic_base;
    case MSR_SYSENTER_CS:
        return &s->sysenter_cs;
    case MSR_SYSENTER_ESP:
        return &s->sysenter_esp;
    case MSR_SYSENTER_EIP:
        return &s->sysenter_eip;
    case MSR_MISC_ENABLE:
        return &s->misc_enable;
    case MSR_PAT:
        return &s->pat;
    case MSR_MTRR_DEF_TYPE:
        return &s->mtrr_def_type;
    case MSR_EFER:
        return &s->efer;
    case MSR_STAR:
        return &s->star;
    case MSR_LSTAR:
        return &s->lstar;
    case MSR_CSTAR:
        return &s->cstar;
    case MSR_SFMASK:
        return &s->sfmask;
    case MSR_FS_BASE:
        return &s->fs.base;
    case MSR_GS_BASE:
        return &s->gs.base;
    case MSR_KERNEL_GS_BASE:
        return &s->kernel_gs_base;
    case MSR_TSC_AUX:
        return &s->tsc_aux;
    default:
        return NULL;
    }
}

void emu_exec_rdmsr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                    struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    uint32_t msr = (uint32_t)s->gpr[X86_RCX];
    uint64_t v;
    uint64_t *slot = msr_slot(s, msr);
    if (msr == MSR_TSC)
        v = emu_virtual_tsc(s);
    else if (msr == MSR_MTRRCAP)
        v = 0;
    else if (slot)
        v = *slot;
    else {
        emu_raise(out, EMU_GP, true, 0); /* unknown MSR (SDM vol. 2B RDMSR) */
        return;
    }
    s->gpr[X86_RAX] = (uint32_t)v;
    s->gpr[X86_RDX] = v >> 32;
    emu_note(out, "MSR", msr, v);
    emu_advance(ctx, insn, out);
}

void emu_exec_wrmsr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                    struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    uint32_t msr = (uint32_t)s->gpr[X86_RCX];
    uint64_t v = ((s->gpr[X86_RDX] & 0xFFFFFFFF) << 32) | (s->gpr[X86_RAX] & 0xFFFFFFFF);
    uint64_t *slot = msr_slot(s, msr);
    bool address_msr = msr == MSR_LSTAR || msr == MSR_CSTAR || msr == MSR_FS_BASE ||
                       msr == MSR_GS_BASE || msr == MSR_KERNEL_GS_BASE || msr == MSR_SYSENTER_ESP ||
                       msr == MSR_SYSENTER_EIP;
    if (msr == MSR_TSC) {
        s->tsc_offset = (int64_t)(v - emu_time_ns());
        emu_note(out, "MSR", msr, v);
        emu_advance(ctx, insn, out);
        return;
    }
    if (!slot || (address_msr && !emu_canonical(v)) ||
        (msr == MSR_EFER && (v & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))) ||
        (msr == MSR_TSC_AUX && (v >> 32))) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    if (msr == MSR_EFER) /* LMA is read-only: it reflects CR0.PG && LME */
        v = (v & ~EFER_LMA) | (s->efer & EFER_LMA);
    emu_note(out, "MSR", msr, v);
    *slot = v;
    emu_advance(ctx, insn, out);
}

void emu_exec_rdpmc(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                    struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    /* vmlab's virtual CPU has four idle counters (CPUID leaf 0xA is not advertised). */
    if ((uint32_t)s->gpr[X86_RCX] > 3) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    s->gpr[X86_RAX] = 0;
    s->gpr[X86_RDX] = 0;
    emu_advance(ctx, insn, out);
}

void emu_exec_swapgs(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                     struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    uint64_t t = s->gs.base;
    emu_note(out, "GS.base", t, s->kernel_gs_base);
    s->gs.base = s->kernel_gs_base;
    s->kernel_gs_base = t;
    emu_advance(ctx, insn, out);
}

void emu_exec_fsgsbase(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                       struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    if (!(s->cr4 & X86_CR4_FSGSBASE)) {
        emu_raise(out, EMU_UD, false, 0);
        return;
    }
    ZydisMnemonic m = insn->info.mnemonic;
    uint64_t *base =
        (m == ZYDIS_MNEMONIC_RDFSBASE || m == ZYDIS_MNEMONIC_WRFSBASE) ? &s->fs.base : &s->gs.base;
    ZydisRegister reg = insn->operands[0].reg.value;
    if (m == ZYDIS_MNEMONIC_RDFSBASE || m == ZYDIS_MNEMONIC_RDGSBASE) {
        emu_reg_write(s, reg, *base);
    } else {
        uint64_t v = emu_reg_read(s, reg);
        if (!emu_canonical(v)) {
            emu_raise(out, EMU_GP, true, 0);
            return;
        }
        emu_note(out, "segment base", *base, v);
        *base = v;
    }
    emu_advance(ctx, insn, out);
}
