/* emu_store.c - emu_execute_store(): an ordinary instruction that writes memory, performed by
 * the core when the backend cannot let it run natively.
 *
 * Not a sensitive instruction: a store to one of the guest's own page tables, which the
 * shadow MMU keeps read-only (traced) in the window. The backend hands the decoded
 * instruction here; the core performs it on the guest-physical memory the guest's tables
 * name (emu_read/emu_write, so the store is reported to the shadow MMU, which zaps what the
 * written entries translated) and on the registers and flags, as the CPU would (Intel SDM vol.
 * 2, per instruction). KVM's x86 emulator does the same job for its shadow MMU; like it, only
 * the forms that write page tables in practice are covered:
 *
 *   MOV m, r/imm      XCHG m, r        CMPXCHG m, r      (LOCK is implied: one vCPU)
 *   OR AND XOR ADD SUB m, r/imm        INC DEC NOT NEG m
 *   BTS BTR BTC m, r/imm               STOS (REP)        MOVS (REP)
 *
 * Anything else returns EMU_UNHANDLED; the backend then has its own fallback.
 */
#include <string.h>

#include "emu_internal.h"

#define ARITH_FLAGS                                                                                \
    (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_OF)

static uint64_t size_mask(unsigned bytes)
{
    return bytes >= 8 ? ~0ULL : (1ULL << (8 * bytes)) - 1;
}

/* ZF, SF, PF of a result (SDM vol. 1 3.4.3.1); PF looks at the low byte only. */
static uint64_t result_flags(uint64_t r, unsigned bytes)
{
    uint64_t f = 0;
    r &= size_mask(bytes);
    if (r == 0)
        f |= X86_EFLAGS_ZF;
    if ((r >> (8 * bytes - 1)) & 1)
        f |= X86_EFLAGS_SF;
    if (!__builtin_parity((unsigned)(r & 0xFF)))
        f |= X86_EFLAGS_PF;
    return f;
}

static uint64_t add_flags(uint64_t a, uint64_t b, uint64_t r, unsigned bytes)
{
    uint64_t m = size_mask(bytes), f = result_flags(r, bytes);
    unsigned top = 8 * bytes - 1;
    if ((r & m) < (a & m))
        f |= X86_EFLAGS_CF;
    if ((((a ^ r) & (b ^ r)) >> top) & 1)
        f |= X86_EFLAGS_OF;
    if (((a ^ b ^ r) >> 4) & 1)
        f |= X86_EFLAGS_AF;
    return f;
}

static uint64_t sub_flags(uint64_t a, uint64_t b, uint64_t r, unsigned bytes)
{
    uint64_t m = size_mask(bytes), f = result_flags(r, bytes);
    unsigned top = 8 * bytes - 1;
    if ((a & m) < (b & m))
        f |= X86_EFLAGS_CF;
    if ((((a ^ b) & (a ^ r)) >> top) & 1)
        f |= X86_EFLAGS_OF;
    if (((a ^ b ^ r) >> 4) & 1)
        f |= X86_EFLAGS_AF;
    return f;
}

static void set_flags(struct vcpu_state *s, uint64_t which, uint64_t value)
{
    s->rflags = (s->rflags & ~which) | (value & which);
}

static int memory_operand_index(const struct x86_decoded_insn *insn)
{
    for (unsigned i = 0; i < insn->info.operand_count_visible; i++)
        if (insn->operands[i].type == ZYDIS_OPERAND_TYPE_MEMORY)
            return (int)i;
    return -1;
}

/* STOS / MOVS, with REP: every element through the MMU, RCX/RSI/RDI as the CPU leaves them
 * (a fault after some elements leaves the registers at the faulting element, SDM vol. 2B
 * REP). */
static void string_store(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                         struct emu_result *out, bool movs)
{
    struct vcpu_state *s = ctx->state;
    unsigned size = insn->info.operand_width / 8;
    bool rep = insn->info.attributes & ZYDIS_ATTRIB_HAS_REP;
    uint64_t amask = insn->info.address_width == 64 ? ~0ULL : 0xFFFFFFFFULL;
    int64_t step = (s->rflags & X86_EFLAGS_DF) ? -(int64_t)size : (int64_t)size;
    uint64_t count = rep ? s->gpr[X86_RCX] & amask : 1;
    for (; count; count--) {
        uint64_t v = s->gpr[X86_RAX];
        if (movs && !emu_read(ctx, s->gpr[X86_RSI] & amask, &v, size, out))
            return;
        if (!emu_write(ctx, s->gpr[X86_RDI] & amask, &v, size, out))
            return;
        s->gpr[X86_RDI] = (s->gpr[X86_RDI] & ~amask) | ((s->gpr[X86_RDI] + step) & amask);
        if (movs)
            s->gpr[X86_RSI] = (s->gpr[X86_RSI] & ~amask) | ((s->gpr[X86_RSI] + step) & amask);
        if (rep)
            s->gpr[X86_RCX] = (s->gpr[X86_RCX] & ~amask) | ((count - 1) & amask);
    }
    emu_advance(ctx, insn, out);
}

void emu_execute_store(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                       struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    ZydisMnemonic m = insn->info.mnemonic;
    out->status = EMU_UNHANDLED;
    out->cls = EMU_CLASS_NONE;
    if (m == ZYDIS_MNEMONIC_STOSB || m == ZYDIS_MNEMONIC_STOSW || m == ZYDIS_MNEMONIC_STOSD ||
        m == ZYDIS_MNEMONIC_STOSQ) {
        string_store(ctx, insn, out, false);
        return;
    }
    if (m == ZYDIS_MNEMONIC_MOVSB || m == ZYDIS_MNEMONIC_MOVSW || m == ZYDIS_MNEMONIC_MOVSD ||
        m == ZYDIS_MNEMONIC_MOVSQ) {
        if (insn->info.operand_count_visible == 0 || /* MOVSD the SSE move has operands */
            insn->operands[0].type == ZYDIS_OPERAND_TYPE_MEMORY) {
            string_store(ctx, insn, out, true);
            return;
        }
        return;
    }
    int mi = memory_operand_index(insn);
    if (mi != 0) /* the forms handled here all write their first operand */
        return;
    const ZydisDecodedOperand *dst = &insn->operands[0];
    unsigned bytes = dst->size / 8;
    if (bytes == 0 || bytes > 8)
        return;
    uint64_t mask = size_mask(bytes);
    uint64_t addr;
    if (!emu_mem_address(s, insn, dst, &addr)) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    uint64_t src = 0, old = 0, r = 0, flags = 0, which = 0;
    ZydisRegister reg_out = ZYDIS_REGISTER_NONE; /* written after the store succeeded */
    uint64_t reg_value = 0;
    bool has_src = insn->info.operand_count_visible > 1;
    if (has_src && !emu_operand_read(ctx, insn, 1, &src, out))
        return;
    switch (m) {
    case ZYDIS_MNEMONIC_MOV:
        if (!emu_write(ctx, addr, &src, bytes, out))
            return;
        emu_advance(ctx, insn, out);
        return;
    case ZYDIS_MNEMONIC_BTS:
    case ZYDIS_MNEMONIC_BTR:
    case ZYDIS_MNEMONIC_BTC:
        if (insn->operands[1].type == ZYDIS_OPERAND_TYPE_REGISTER) {
            /* a register bit offset reaches beyond the operand (SDM vol. 2A BT, "bit base") */
            int64_t offset = bytes == 8 ? (int64_t)src : bytes == 4 ? (int32_t)src : (int16_t)src;
            addr += (uint64_t)((offset >> (bytes == 8 ? 6 : bytes == 4 ? 5 : 4)) * (int64_t)bytes);
        }
        src &= 8 * bytes - 1;
        break;
    default:
        break;
    }
    if (!emu_read(ctx, addr, &old, bytes, out))
        return;
    switch (m) {
    case ZYDIS_MNEMONIC_XCHG:
        r = src;
        reg_out = insn->operands[1].reg.value;
        reg_value = old;
        break;
    case ZYDIS_MNEMONIC_CMPXCHG: {
        uint64_t acc = s->gpr[X86_RAX] & mask;
        flags = sub_flags(acc, old, acc - old, bytes);
        which = ARITH_FLAGS;
        if (acc == (old & mask)) {
            r = src;
        } else { /* the destination is written back unchanged, the accumulator gets it */
            r = old;
            reg_out = bytes == 8   ? ZYDIS_REGISTER_RAX
                      : bytes == 4 ? ZYDIS_REGISTER_EAX
                      : bytes == 2 ? ZYDIS_REGISTER_AX
                                   : ZYDIS_REGISTER_AL;
            reg_value = old;
        }
        break;
    }
    case ZYDIS_MNEMONIC_OR:
    case ZYDIS_MNEMONIC_AND:
    case ZYDIS_MNEMONIC_XOR:
        r = m == ZYDIS_MNEMONIC_OR ? old | src : m == ZYDIS_MNEMONIC_AND ? old & src : old ^ src;
        flags = result_flags(r, bytes); /* CF = OF = 0, AF undefined (0) */
        which = ARITH_FLAGS;
        break;
    case ZYDIS_MNEMONIC_ADD:
        r = old + src;
        flags = add_flags(old, src, r, bytes);
        which = ARITH_FLAGS;
        break;
    case ZYDIS_MNEMONIC_SUB:
        r = old - src;
        flags = sub_flags(old, src, r, bytes);
        which = ARITH_FLAGS;
        break;
    case ZYDIS_MNEMONIC_INC:
    case ZYDIS_MNEMONIC_DEC: /* CF is left alone */
        r = m == ZYDIS_MNEMONIC_INC ? old + 1 : old - 1;
        flags = m == ZYDIS_MNEMONIC_INC ? add_flags(old, 1, r, bytes) : sub_flags(old, 1, r, bytes);
        which = ARITH_FLAGS & ~(uint64_t)X86_EFLAGS_CF;
        break;
    case ZYDIS_MNEMONIC_NOT:
        r = ~old;
        break;
    case ZYDIS_MNEMONIC_NEG:
        r = 0 - old;
        flags = sub_flags(0, old, r, bytes);
        which = ARITH_FLAGS;
        break;
    case ZYDIS_MNEMONIC_BTS:
    case ZYDIS_MNEMONIC_BTR:
    case ZYDIS_MNEMONIC_BTC: {
        uint64_t bit = 1ULL << src;
        flags = (old & bit) ? X86_EFLAGS_CF : 0;
        which = X86_EFLAGS_CF;
        r = m == ZYDIS_MNEMONIC_BTS ? old | bit : m == ZYDIS_MNEMONIC_BTR ? old & ~bit : old ^ bit;
        break;
    }
    default:
        return; /* EMU_UNHANDLED */
    }
    r &= mask;
    if (!emu_write(ctx, addr, &r, bytes, out))
        return;
    if (reg_out != ZYDIS_REGISTER_NONE)
        emu_reg_write(s, reg_out, reg_value);
    set_flags(s, which, flags);
    emu_note(out, "memory", old & mask, r);
    emu_advance(ctx, insn, out);
}
