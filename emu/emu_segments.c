/* emu_segments.c - segment registers and far transfers: MOV to/from Sreg, PUSH/POP Sreg,
 * LFS/LGS/LSS, far CALL/JMP/RET, and the descriptor queries LAR, LSL, VERR, VERW.
 *
 * All of them are sensitive but unprivileged (Robin & Irvine 2000): they read the RPL of a
 * selector or check a descriptor's DPL against the CPL, so at CPL 3 they answer for the host
 * and trap_emulate never sees them. dbt and vtx run them here (or in hardware) at CPL 0.
 */
#include "emu_families.h"

void emu_exec_mov_from_seg(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                           struct emu_result *out)
{
    uint64_t sel = emu_reg_read(ctx->state, insn->operands[1].reg.value);
    emu_store_result(ctx, insn, out, sel, "selector");
}

/* LFS, LGS, LSS r, m16:16/32/64: the offset into r, the selector into the segment register,
 * with the checks of any data-segment load (SDM vol. 2A LDS/LES/LFS/LGS/LSS). Native at CPL 3
 * they would load the host's descriptor for the guest's selector (and with it a host FS/GS
 * base): sensitive, like MOV to a segment register. */
static void exec_load_far_pointer(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                                  struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    ZydisMnemonic m = insn->info.mnemonic;
    ZydisRegister sreg = m == ZYDIS_MNEMONIC_LFS   ? ZYDIS_REGISTER_FS
                         : m == ZYDIS_MNEMONIC_LGS ? ZYDIS_REGISTER_GS
                                                   : ZYDIS_REGISTER_SS;
    uint64_t addr;
    if (insn->operands[1].type != ZYDIS_OPERAND_TYPE_MEMORY) {
        emu_raise(out, EMU_UD, false, 0);
        return;
    }
    if (!emu_mem_address(s, insn, &insn->operands[1], &addr)) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    unsigned off_size = insn->info.operand_width / 8;
    uint64_t offset = 0;
    uint16_t sel = 0;
    if (!emu_read(ctx, addr, &offset, off_size, out) ||
        !emu_read(ctx, addr + off_size, &sel, 2, out))
        return;
    uint16_t old = (uint16_t)emu_reg_read(s, sreg);
    if (!emu_load_data_segment(ctx, sreg, sel, out))
        return;
    emu_reg_write(s, insn->operands[0].reg.value, offset);
    emu_note(out, "selector", old, sel);
    emu_advance(ctx, insn, out);
}

void emu_exec_mov_to_seg(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                         struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    ZydisMnemonic m = insn->info.mnemonic;
    if (m == ZYDIS_MNEMONIC_LFS || m == ZYDIS_MNEMONIC_LGS || m == ZYDIS_MNEMONIC_LSS) {
        exec_load_far_pointer(ctx, insn, out);
        return;
    }
    uint64_t v;
    if (!emu_operand_read(ctx, insn, 1, &v, out))
        return;
    ZydisRegister sreg = insn->operands[0].reg.value;
    uint16_t old = (uint16_t)emu_reg_read(s, sreg);
    if (!emu_load_data_segment(ctx, sreg, (uint16_t)v, out))
        return;
    if (sreg == ZYDIS_REGISTER_SS)
        s->interrupt_shadow = true; /* MOV SS shadow (SDM vol. 3A 6.8.3) */
    emu_note(out, "selector", old, (uint16_t)v);
    emu_advance(ctx, insn, out);
}

void emu_exec_push_seg(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                       struct emu_result *out)
{
    uint64_t sel = emu_reg_read(ctx->state, insn->operands[0].reg.value);
    if (!emu_push(ctx, sel, insn->info.operand_width / 8, out))
        return;
    emu_note(out, "selector", sel, sel);
    emu_advance(ctx, insn, out);
}

void emu_exec_pop_seg(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                      struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    uint64_t v;
    uint64_t rsp = s->gpr[X86_RSP];
    if (!emu_pop(ctx, &v, insn->info.operand_width / 8, out))
        return;
    if (!emu_load_data_segment(ctx, insn->operands[0].reg.value, (uint16_t)v, out)) {
        s->gpr[X86_RSP] = rsp;
        return;
    }
    emu_note(out, "selector", v, v);
    emu_advance(ctx, insn, out);
}

/* CALL/JMP m16:64 (the only far forms in 64-bit mode; SDM vol. 2A CALL, JMP). */
static void far_call_or_jmp(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                            struct emu_result *out, bool call)
{
    struct vcpu_state *s = ctx->state;
    uint64_t addr;
    if (insn->operands[0].type != ZYDIS_OPERAND_TYPE_MEMORY) {
        emu_raise(out, EMU_UD, false, 0); /* direct far forms are invalid in 64-bit mode */
        return;
    }
    if (!emu_mem_address(s, insn, &insn->operands[0], &addr)) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    unsigned off_size = insn->info.operand_width == 64 ? 8 : insn->info.operand_width / 8;
    uint64_t offset = 0;
    uint16_t sel = 0;
    if (!emu_read(ctx, addr, &offset, off_size, out) ||
        !emu_read(ctx, addr + off_size, &sel, 2, out))
        return;
    if (!emu_canonical(offset)) { /* #GP(0) before anything changes (SDM vol. 2A JMP, CALL) */
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    uint64_t next = s->rip + insn->length;
    struct x86_segment old_cs = s->cs;
    uint64_t old_rsp = s->gpr[X86_RSP];
    if (!emu_load_code_segment(ctx, sel, out))
        return;
    if (call) {
        unsigned slot = off_size == 8 ? 8 : off_size;
        if (!emu_push(ctx, old_cs.selector, slot, out) || !emu_push(ctx, next, slot, out)) {
            s->cs = old_cs;
            s->gpr[X86_RSP] = old_rsp;
            return;
        }
    }
    emu_note(out, "CS", old_cs.selector, sel);
    s->rip = offset;
    out->status = EMU_OK;
}

void emu_exec_far_call(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                       struct emu_result *out)
{
    far_call_or_jmp(ctx, insn, out, true);
}

void emu_exec_far_jmp(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                      struct emu_result *out)
{
    far_call_or_jmp(ctx, insn, out, false);
}

void emu_exec_far_ret(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                      struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    unsigned size = insn->info.operand_width / 8;
    uint64_t rip, cs;
    uint64_t rsp = s->gpr[X86_RSP];
    if (!emu_pop(ctx, &rip, size, out) || !emu_pop(ctx, &cs, size, out)) {
        s->gpr[X86_RSP] = rsp;
        return;
    }
    if (!emu_canonical(rip)) { /* #GP(0), the stack unchanged (SDM vol. 2A RET) */
        s->gpr[X86_RSP] = rsp;
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    uint16_t old = s->cs.selector;
    if (!emu_load_code_segment(ctx, (uint16_t)cs, out)) {
        s->gpr[X86_RSP] = rsp;
        return;
    }
    if (insn->info.operand_count_visible && insn->operands[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
        s->gpr[X86_RSP] += insn->operands[0].imm.value.u; /* RETF imm16 */
    emu_note(out, "CS", old, (uint16_t)cs);
    s->rip = rip;
    out->status = EMU_OK;
}

/* LAR, LSL, VERR, VERW at CPL 0 (SDM vol. 2A LAR/LSL, vol. 2B VERR/VERW): ZF says whether the
 * selector names a descriptor the instruction accepts. */
void emu_exec_segment_query(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                            struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    enum emu_class cls = out->cls;
    unsigned src = (cls == EMU_CLASS_LAR || cls == EMU_CLASS_LSL) ? 1 : 0;
    uint64_t v;
    if (!emu_operand_read(ctx, insn, src, &v, out))
        return;
    uint16_t sel = (uint16_t)v;
    uint64_t lo = 0, hi = 0;
    bool ok = emu_descriptor(ctx, sel, &lo, &hi);
    if (ok) {
        unsigned type = DESC_TYPE(lo);
        bool sys = !DESC_S(lo);
        bool conforming_code = DESC_CODE(lo) && (type & 0x4);
        bool privilege_ok = conforming_code || DESC_DPL(lo) >= (sel & 3u); /* CPL 0 */
        switch (cls) {
        case EMU_CLASS_LAR:
            ok = (!sys || type == 0x2 || type == 0x9 || type == 0xB || type == 0xC) &&
                 (sys || privilege_ok);
            break;
        case EMU_CLASS_LSL:
            ok = (!sys || type == 0x2 || type == 0x9 || type == 0xB) && (sys || privilege_ok);
            break;
        case EMU_CLASS_VERR:
            ok = !sys && privilege_ok && (!DESC_CODE(lo) || (type & 0x2));
            break;
        default: /* VERW */
            ok = !sys && privilege_ok && !DESC_CODE(lo) && (type & 0x2);
            break;
        }
    }
    emu_set_flag(s, X86_EFLAGS_ZF, ok);
    if (ok && cls == EMU_CLASS_LAR) {
        /* access rights masked by 00F0FF00H: limit bits 19:16 read as 0 (SDM vol. 2A LAR) */
        emu_reg_write(s, insn->operands[0].reg.value, lo >> 32 & 0x00F0FF00);
    } else if (ok && cls == EMU_CLASS_LSL) {
        uint32_t limit = (uint32_t)((lo & 0xFFFF) | ((lo >> 32) & 0xF0000));
        if (DESC_G(lo))
            limit = (limit << 12) | 0xFFF;
        emu_reg_write(s, insn->operands[0].reg.value, limit);
    }
    emu_note(out, "ZF", sel, ok);
    emu_advance(ctx, insn, out);
}
