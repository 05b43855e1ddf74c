/* emu_string_io.c - INS and OUTS, with and without REP (SDM vol. 2A INS, vol. 2B OUTS).
 *
 * A REP form is handed to the VMM in chunks of at most sizeof(emu_io.data) bytes: RCX and
 * RSI/RDI are updated by what each chunk moved and RIP stays on the instruction until RCX
 * reaches 0, so that an interrupt or a kick between chunks resumes it correctly (the CPU
 * does the same: SDM vol. 2B REP, "interruptible").
 */
#include <string.h>

#include "emu_families.h"

static unsigned string_io_size(ZydisMnemonic m)
{
    switch (m) {
    case ZYDIS_MNEMONIC_INSB:
    case ZYDIS_MNEMONIC_OUTSB:
        return 1;
    case ZYDIS_MNEMONIC_INSW:
    case ZYDIS_MNEMONIC_OUTSW:
        return 2;
    default:
        return 4;
    }
}

static uint64_t addr_mask(const struct x86_decoded_insn *insn)
{
    return insn->info.address_width == 64 ? ~0ULL : 0xFFFFFFFFULL;
}

static bool has_rep(const struct x86_decoded_insn *insn)
{
    return insn->info.attributes &
           (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE);
}

static void exec_string_io(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                           struct emu_result *out, bool is_out)
{
    struct vcpu_state *s = ctx->state;
    unsigned size = string_io_size(insn->info.mnemonic);
    bool rep = has_rep(insn);
    uint64_t mask = addr_mask(insn);
    uint64_t count = rep ? s->gpr[X86_RCX] & mask : 1;
    if (count == 0) { /* REP with RCX = 0: nothing (SDM vol. 2B REP) */
        emu_advance(ctx, insn, out);
        return;
    }
    uint64_t chunk = sizeof(out->io.data) / size;
    if (count < chunk)
        chunk = count;
    out->io.direction = is_out ? 1 : 0;
    out->io.port = (uint16_t)s->gpr[X86_RDX];
    out->io.size = (uint8_t)size;
    out->io.string = true;
    out->io.rep = rep;
    emu_note(out, is_out ? "port out" : "port in", out->io.port, out->io.port);
    if (!is_out) {
        out->io.count = (uint32_t)chunk;
        out->status = EMU_EXIT_IO; /* emu_string_in_done() stores the data */
        return;
    }
    int64_t step = (s->rflags & X86_EFLAGS_DF) ? -(int64_t)size : (int64_t)size;
    uint64_t rsi = s->gpr[X86_RSI];
    uint64_t seg_base = 0;
    for (unsigned i = 0; i < insn->info.operand_count; i++)
        if (insn->operands[i].type == ZYDIS_OPERAND_TYPE_MEMORY) {
            if (insn->operands[i].mem.segment == ZYDIS_REGISTER_FS)
                seg_base = s->fs.base;
            else if (insn->operands[i].mem.segment == ZYDIS_REGISTER_GS)
                seg_base = s->gs.base;
        }
    uint64_t done = 0;
    struct emu_result fault;
    for (; done < chunk; done++) {
        if (!emu_read(ctx, seg_base + (rsi & mask), out->io.data + done * size, size, &fault))
            break;
        rsi += (uint64_t)step;
    }
    if (done == 0) { /* the first element faults: the instruction does (a later one, later) */
        emu_raise(out, fault.vector, fault.has_error_code, fault.error_code);
        out->cr2 = fault.cr2;
        return;
    }
    s->gpr[X86_RSI] = (s->gpr[X86_RSI] & ~mask) | (rsi & mask);
    if (rep)
        s->gpr[X86_RCX] = (s->gpr[X86_RCX] & ~mask) | ((count - done) & mask);
    if (!rep || count == done)
        s->rip += insn->length;
    out->io.count = (uint32_t)done;
    out->status = EMU_EXIT_IO;
}

void emu_exec_ins(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    exec_string_io(ctx, insn, out, false);
}

void emu_exec_outs(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    exec_string_io(ctx, insn, out, true);
}

void emu_string_in_done(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                        const struct emu_io *io, const uint8_t *data, struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    out->status = EMU_OK;
    uint64_t mask = addr_mask(insn);
    int64_t step = (s->rflags & X86_EFLAGS_DF) ? -(int64_t)io->size : (int64_t)io->size;
    uint64_t rdi = s->gpr[X86_RDI];
    uint64_t done = 0;
    for (; done < io->count; done++) {
        if (!emu_write(ctx, rdi & mask, data + done * io->size, io->size, out))
            break;
        rdi += (uint64_t)step;
    }
    s->gpr[X86_RDI] = (s->gpr[X86_RDI] & ~mask) | (rdi & mask);
    if (io->rep) {
        uint64_t left = (s->gpr[X86_RCX] & mask) - done;
        s->gpr[X86_RCX] = (s->gpr[X86_RCX] & ~mask) | (left & mask);
        if (left == 0)
            s->rip += insn->length;
    } else if (done == io->count) {
        s->rip += insn->length;
    }
}
