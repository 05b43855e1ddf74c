/* emu_privileged.c - CLI, STI, HLT, IN, OUT and MOV CRn on the virtual CPU (emu_privileged.h).
 *
 * The reference solution of the trap-and-emulate lab: labs/01-trap-emulate/ hands out this
 * file with the bodies replaced by TODOs, and a lab build compiles the student's copy instead.
 */
#include <string.h>

#include "emu_privileged.h"

/* CR4 bits the virtual CPU implements; setting any other is #GP(0) (SDM vol. 2B MOV CR). */
#define CR4_KNOWN                                                                                  \
    (X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE | X86_CR4_PSE | X86_CR4_PAE |            \
     X86_CR4_MCE | X86_CR4_PGE | X86_CR4_PCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT |               \
     X86_CR4_UMIP | X86_CR4_FSGSBASE | X86_CR4_PCIDE | X86_CR4_OSXSAVE | X86_CR4_SMEP |            \
     X86_CR4_SMAP)

/* ---- interrupt flag and halt ------------------------------------------------------------ */

void emu_exec_cli(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    bool was = s->rflags & X86_EFLAGS_IF;
    emu_set_flag(s, X86_EFLAGS_IF, false);
    emu_note(out, "IF_virt", was, 0);
    emu_advance(ctx, insn, out);
}

void emu_exec_sti(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    bool was = s->rflags & X86_EFLAGS_IF;
    emu_set_flag(s, X86_EFLAGS_IF, true);
    emu_note(out, "IF_virt", was, 1);
    if (!was) { /* STI shadow only when IF was clear (SDM vol. 2B STI) */
        s->interrupt_shadow = true;
        out->interrupts_enabled_now = true;
    }
    emu_advance(ctx, insn, out);
}

void emu_exec_hlt(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    ctx->state->rip += insn->length;
    out->status = EMU_EXIT_HLT;
}

/* ---- port I/O (register forms) --------------------------------------------------------- */

static uint16_t io_port(const struct vcpu_state *s, const ZydisDecodedOperand *op)
{
    return op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE ? (uint16_t)op->imm.value.u
                                                    : (uint16_t)s->gpr[X86_RDX];
}

/* IN AL/AX/EAX, imm8|DX and OUT imm8|DX, AL/AX/EAX (SDM vol. 2A IN, vol. 2B OUT): the
 * accumulator operand gives the size, the other one the port. */
static void exec_in_out(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                        struct emu_result *out, bool is_out)
{
    struct vcpu_state *s = ctx->state;
    const ZydisDecodedOperand *reg = &insn->operands[is_out ? 1 : 0];
    out->io.direction = is_out ? 1 : 0;
    out->io.port = io_port(s, &insn->operands[is_out ? 0 : 1]);
    out->io.size = (uint8_t)(reg->size / 8);
    out->io.count = 1;
    out->io.string = false;
    out->status = EMU_EXIT_IO;
    emu_note(out, is_out ? "port out" : "port in", out->io.port, out->io.port);
    if (is_out) {
        uint64_t v = s->gpr[X86_RAX];
        memcpy(out->io.data, &v, out->io.size);
        s->rip += insn->length;
    }
}

void emu_exec_in(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    exec_in_out(ctx, insn, out, false);
}

void emu_exec_out(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    exec_in_out(ctx, insn, out, true);
}

void emu_privileged_in_done(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                            const struct emu_io *io, const uint8_t *data, struct emu_result *out)
{
    /* IN AL/AX/EAX: an 8/16-bit load merges into RAX, a 32-bit one zero-extends (SDM vol. 1
     * 3.4.1.1); emu_reg_write applies those rules. */
    uint64_t v = 0;
    memcpy(&v, data, io->size);
    emu_reg_write(ctx->state, insn->operands[0].reg.value, v);
    emu_advance(ctx, insn, out);
}

/* ---- control registers ------------------------------------------------------------------ */

void emu_exec_mov_cr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                     struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    bool to_cr = ZydisRegisterGetClass(insn->operands[0].reg.value) == ZYDIS_REGCLASS_CONTROL;
    ZydisRegister cr = insn->operands[to_cr ? 0 : 1].reg.value;
    ZydisRegister gpr = insn->operands[to_cr ? 1 : 0].reg.value;
    uint64_t *reg;
    const char *name;
    switch (cr) {
    case ZYDIS_REGISTER_CR0:
        reg = &s->cr0;
        name = "CR0";
        break;
    case ZYDIS_REGISTER_CR2:
        reg = &s->cr2;
        name = "CR2";
        break;
    case ZYDIS_REGISTER_CR3:
        reg = &s->cr3;
        name = "CR3";
        break;
    case ZYDIS_REGISTER_CR4:
        reg = &s->cr4;
        name = "CR4";
        break;
    case ZYDIS_REGISTER_CR8:
        reg = &s->cr8;
        name = "CR8";
        break;
    default:
        emu_raise(out, EMU_UD, false, 0);
        return;
    }
    if (!to_cr) {
        emu_reg_write(s, gpr, *reg);
        emu_note(out, name, *reg, *reg);
        emu_advance(ctx, insn, out);
        return;
    }
    uint64_t v = emu_reg_read(s, gpr);
    bool long_mode = s->efer & EFER_LMA;
    bool bad = false;
    switch (cr) { /* #GP(0) conditions: SDM vol. 2B "MOV-Move to/from Control Registers" */
    case ZYDIS_REGISTER_CR0:
        v |= X86_CR0_ET; /* hardwired */
        bad = (v >> 32) || ((v & X86_CR0_PG) && !(v & X86_CR0_PE)) ||
              ((v & X86_CR0_NW) && !(v & X86_CR0_CD)) || (long_mode && !(v & X86_CR0_PG));
        break;
    case ZYDIS_REGISTER_CR3:
        bad = v >> 52;
        break;
    case ZYDIS_REGISTER_CR4:
        bad = (v & ~(uint64_t)CR4_KNOWN) || (long_mode && !(v & X86_CR4_PAE));
        break;
    case ZYDIS_REGISTER_CR8:
        bad = v >> 4;
        break;
    default:
        break;
    }
    if (bad) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    emu_note(out, name, *reg, v);
    *reg = v;
    emu_advance(ctx, insn, out);
}
