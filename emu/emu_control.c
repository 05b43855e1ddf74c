/* emu_control.c - the rest of the system-control instructions: debug registers, the CR0
 * shorthands (LMSW, CLTS, SMSW), XCR0, and the cache and TLB controls.
 *
 * MOV to/from CRn lives with the lab's family (emu_privileged.c).
 */
#include "emu_families.h"

void emu_exec_mov_dr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                     struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    bool to_dr = ZydisRegisterGetClass(insn->operands[0].reg.value) == ZYDIS_REGCLASS_DEBUG;
    ZydisRegister dr = insn->operands[to_dr ? 0 : 1].reg.value;
    ZydisRegister gpr = insn->operands[to_dr ? 1 : 0].reg.value;
    unsigned n = (unsigned)(dr - ZYDIS_REGISTER_DR0);
    if (n > 7) {
        emu_raise(out, EMU_UD, false, 0);
        return;
    }
    if (n == 4 || n == 5) { /* aliases of DR6/DR7 unless CR4.DE (SDM vol. 3B 18.2.2) */
        if (s->cr4 & X86_CR4_DE) {
            emu_raise(out, EMU_UD, false, 0);
            return;
        }
        n += 2;
    }
    if (!to_dr) {
        emu_reg_write(s, gpr, s->dr[n]);
        emu_note(out, "DR", n, s->dr[n]);
        emu_advance(ctx, insn, out);
        return;
    }
    uint64_t v = emu_reg_read(s, gpr);
    if ((n == 6 || n == 7) && (v >> 32)) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    emu_note(out, "DR", s->dr[n], v);
    s->dr[n] = v;
    emu_advance(ctx, insn, out);
}

void emu_exec_lmsw(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    uint64_t v;
    if (!emu_operand_read(ctx, insn, 0, &v, out))
        return;
    /* Loads CR0[3:0]; can set PE but never clear it (SDM vol. 2A LMSW). */
    uint64_t cr0 = (s->cr0 & ~0xEULL) | (v & 0xF) | (s->cr0 & X86_CR0_PE);
    emu_note(out, "CR0", s->cr0, cr0);
    s->cr0 = cr0;
    emu_advance(ctx, insn, out);
}

void emu_exec_clts(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    emu_note(out, "CR0.TS", (s->cr0 >> 3) & 1, 0);
    s->cr0 &= ~(uint64_t)X86_CR0_TS;
    emu_advance(ctx, insn, out);
}

void emu_exec_smsw(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    /* To memory: CR0[15:0]; to a register: CR0, truncated to the operand size (SDM vol. 2B) */
    uint64_t cr0 = ctx->state->cr0;
    bool to_memory = insn->operands[0].type == ZYDIS_OPERAND_TYPE_MEMORY;
    emu_store_result(ctx, insn, out, to_memory ? (cr0 & 0xFFFF) : cr0, "CR0");
}

void emu_exec_xsetbv(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                     struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    /* XCR0 only; x87 must stay enabled; the virtual CPU offers x87, SSE, AVX (bits 0-2) */
    if ((uint32_t)s->gpr[X86_RCX] != 0 || !(s->gpr[X86_RAX] & 1) || (s->gpr[X86_RAX] & ~7ULL) ||
        (uint32_t)s->gpr[X86_RDX]) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    emu_note(out, "XCR0", s->xcr0, s->gpr[X86_RAX] & 7);
    s->xcr0 = s->gpr[X86_RAX] & 7;
    emu_advance(ctx, insn, out);
}

void emu_exec_cache_control(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                            struct emu_result *out)
{
    /* WBINVD, INVD, MONITOR/MWAIT: no cache is modelled, so they complete with no
     * architectural effect. INVLPG and INVPCID invalidate translations: the MMU that shadows
     * them is told. INVLPG's operand names a linear address; nothing is accessed, nothing
     * faults (SDM vol. 2A INVLPG). */
    uint64_t gla;
    if (out->cls == EMU_CLASS_INVLPG &&
        emu_mem_address(ctx->state, insn, &insn->operands[0], &gla)) {
        emu_note(out, "INVLPG", gla, gla);
        emu_tlb_flush(ctx, EMU_TLB_PAGE, gla);
    } else if (out->cls == EMU_CLASS_INVPCID) {
        emu_tlb_flush(ctx, EMU_TLB_ALL, 0); /* every form flushes at least what it names */
    }
    emu_advance(ctx, insn, out);
}
