/* emu_mmio_compute.c - the "compute" step of the MMIO emulation (see emu_mmio.c): with the
 * memory value loaded, the instruction's result, registers and flags on the copy of the
 * state, arithmetic by the CPU itself (emu_fastop.S). */
#include <string.h>

#include "emu_mmio_internal.h"

static void fastop(const uint8_t *fop, unsigned bytes, uint64_t regs[3], struct vcpu_state *s)
{
    uint64_t flags = s->rflags;
    emu_fastop(fop + 16 * log2_bytes(bytes), regs, &flags);
    s->rflags = (s->rflags & ~(uint64_t)ARITH_FLAGS) | (flags & ARITH_FLAGS);
}

/* Condition code cc (0-15, the low nibble of Jcc/SETcc/CMOVcc) on RFLAGS (SDM vol. 1 B.1). */
static bool condition(unsigned cc, uint64_t f)
{
    bool cf = f & X86_EFLAGS_CF, zf = f & X86_EFLAGS_ZF, sf = f & X86_EFLAGS_SF,
         of = f & X86_EFLAGS_OF, pf = f & X86_EFLAGS_PF;
    bool r;
    switch (cc >> 1) {
    case 0:
        r = of;
        break;
    case 1:
        r = cf;
        break;
    case 2:
        r = zf;
        break;
    case 3:
        r = cf || zf;
        break;
    case 4:
        r = sf;
        break;
    case 5:
        r = pf;
        break;
    case 6:
        r = sf != of;
        break;
    default:
        r = zf || sf != of;
        break;
    }
    return (cc & 1) ? !r : r;
}

/* ---- computing: m->value loaded -> m->next, m->result (to store) ---- */

static enum emu_mmio_status compute_string(struct emu_ctx *ctx, struct emu_mmio *m,
                                           struct emu_result *res)
{
    struct vcpu_state *n = &m->next;
    unsigned bytes = m->load ? m->load_size : m->store_size;
    int64_t step = (n->rflags & X86_EFLAGS_DF) ? -(int64_t)bytes : (int64_t)bytes;
    ZydisRegister acc = accumulator(bytes);
    uint64_t regs[3] = {0, 0, 0};
    bool compare = false;
    switch (m->insn.info.opcode & ~1) {
    case 0xA4:
        m->result = m->value;
        n->gpr[X86_RSI] += (uint64_t)step;
        n->gpr[X86_RDI] += (uint64_t)step;
        break;
    case 0xA6: { /* CMPS: [RSI] - [RDI] */
        uint64_t other = 0;
        struct emu_ctx c = *ctx;
        c.state = n;
        if (!emu_read(&c, m->other_addr, &other, bytes, res))
            return EMU_MMIO_EXCEPTION;
        regs[0] = m->cmps_src_by_exit ? m->value : other;
        regs[1] = m->cmps_src_by_exit ? other : m->value;
        compare = true;
        n->gpr[X86_RSI] += (uint64_t)step;
        n->gpr[X86_RDI] += (uint64_t)step;
        break;
    }
    case 0xAA:
        m->result = emu_reg_read(n, acc);
        n->gpr[X86_RDI] += (uint64_t)step;
        break;
    case 0xAC:
        emu_reg_write(n, acc, m->value);
        n->gpr[X86_RSI] += (uint64_t)step;
        break;
    default: /* 0xAE SCAS: accumulator - [RDI] */
        regs[0] = emu_reg_read(n, acc);
        regs[1] = m->value;
        compare = true;
        n->gpr[X86_RDI] += (uint64_t)step;
        break;
    }
    if (compare)
        fastop(emu_fop_cmp, bytes, regs, n);
    uint32_t a = m->insn.info.attributes;
    if (a & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE)) {
        /* one element per execution: stay on the instruction until it is done (SDM vol. 2B
         * REP/REPE/REPNE: RCX, then ZF for CMPS/SCAS) */
        n->gpr[X86_RCX]--;
        bool zf = n->rflags & X86_EFLAGS_ZF;
        bool more = n->gpr[X86_RCX] != 0;
        if (compare && (a & ZYDIS_ATTRIB_HAS_REPE))
            more = more && zf;
        if (compare && (a & ZYDIS_ATTRIB_HAS_REPNE))
            more = more && !zf;
        if (more)
            n->rip = m->insn.rip;
    }
    return EMU_MMIO_DONE;
}

static bool divide_error(const struct emu_mmio *m, unsigned bytes)
{
    const struct vcpu_state *s = &m->next;
    uint64_t divisor = m->value & width_mask(bytes);
    if (divisor == 0)
        return true;
    bool sign = m->insn.info.mnemonic == ZYDIS_MNEMONIC_IDIV;
    unsigned __int128 hi = bytes == 1 ? 0 : (s->gpr[X86_RDX] & width_mask(bytes));
    unsigned __int128 lo =
        bytes == 1 ? (s->gpr[X86_RAX] & 0xFFFF) : (s->gpr[X86_RAX] & width_mask(bytes));
    unsigned dbits = bytes == 1 ? 16 : 16 * bytes; /* dividend width */
    unsigned __int128 dividend = bytes == 1 ? lo : (hi << (8 * bytes)) | lo;
    if (!sign) {
        unsigned __int128 q = dividend / divisor;
        return q > width_mask(bytes);
    }
    /* signed: sign-extend the dividend and divisor, range-check the quotient */
    __int128 sd = (__int128)(dividend << (128 - dbits)) >> (128 - dbits);
    int64_t sv = (int64_t)sign_extend(divisor, bytes);
    if (dbits == 128 && sd == (__int128)((unsigned __int128)1 << 127) && sv == -1)
        return true; /* the one quotient __int128 cannot hold */
    __int128 q = sd / sv;
    __int128 max = ((__int128)1 << (8 * bytes - 1)) - 1;
    return q > max || q < -max - 1;
}

enum emu_mmio_status emu_mmio_compute(struct emu_ctx *ctx, struct emu_mmio *m,
                                      struct emu_result *res)
{
    const struct x86_decoded_insn *insn = &m->insn;
    struct vcpu_state *n = &m->next;
    const ZydisDecodedOperand *op = insn->operands;
    ZydisMnemonic mn = insn->info.mnemonic;
    unsigned bytes = m->load ? m->load_size : m->store_size;
    unsigned width = insn->info.operand_width / 8;
    uint64_t regs[3] = {0, 0, 0};
    const uint8_t *fop = NULL;
    emu_mmio_form_of(mn, &fop);
    n->rip = insn->rip + insn->length;

    switch (m->form) {
    case F_STRING:
        return compute_string(ctx, m, res);
    case F_LOAD: {
        uint64_t v = m->value;
        if (mn == ZYDIS_MNEMONIC_MOVSX || mn == ZYDIS_MNEMONIC_MOVSXD)
            v = sign_extend(v, bytes);
        else if (mn == ZYDIS_MNEMONIC_MOVBE)
            v = byte_swap(v, bytes);
        else if (is_cmovcc(insn) && !condition(insn->info.opcode & 0xF, n->rflags))
            v = emu_reg_read(n, op[0].reg.value); /* CMOVcc not taken: a 32-bit one still
                                                     zero-extends (SDM vol. 2A CMOVcc) */
        emu_reg_write(n, op[0].reg.value, v);
        return EMU_MMIO_DONE;
    }
    case F_STORE:
        if (is_setcc(insn))
            m->result = condition(insn->info.opcode & 0xF, n->rflags);
        else if (mn == ZYDIS_MNEMONIC_MOVBE)
            m->result = byte_swap(operand_value(n, &op[1]), bytes);
        else
            m->result = operand_value(n, &op[1]);
        return EMU_MMIO_DONE;
    case F_ALU: {
        bool mem_first = op[0].type == ZYDIS_OPERAND_TYPE_MEMORY;
        regs[0] = mem_first ? m->value : emu_reg_read(n, op[0].reg.value);
        regs[1] = mem_first ? operand_value(n, &op[1]) : m->value;
        fastop(fop, bytes, regs, n);
        if (mem_first)
            m->result = regs[0];
        else if (mn != ZYDIS_MNEMONIC_CMP && mn != ZYDIS_MNEMONIC_TEST)
            emu_reg_write(n, op[0].reg.value, regs[0]);
        return EMU_MMIO_DONE;
    }
    case F_ALU1:
        regs[0] = m->value;
        fastop(fop, bytes, regs, n);
        m->result = regs[0];
        return EMU_MMIO_DONE;
    case F_SHIFT:
    case F_SHXD:
        regs[0] = m->value;
        if (m->form == F_SHXD) {
            regs[1] = emu_reg_read(n, op[1].reg.value);
            regs[2] = operand_value(n, &op[2]);
        } else {
            regs[2] =
                op[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE ? op[1].imm.value.u : n->gpr[X86_RCX];
        }
        fastop(fop, bytes, regs, n);
        m->result = regs[0];
        return EMU_MMIO_DONE;
    case F_BT:
        regs[0] = m->value;
        regs[1] = operand_value(n, &op[1]) & (8 * bytes - 1);
        fastop(fop, bytes, regs, n);
        m->result = regs[0];
        return EMU_MMIO_DONE;
    case F_XCHG: {
        const ZydisDecodedOperand *r = op[0].type == ZYDIS_OPERAND_TYPE_REGISTER ? &op[0] : &op[1];
        m->result = emu_reg_read(n, r->reg.value);
        emu_reg_write(n, r->reg.value, m->value);
        return EMU_MMIO_DONE;
    }
    case F_XADD:
        regs[0] = m->value;
        regs[1] = emu_reg_read(n, op[1].reg.value);
        fastop(fop, bytes, regs, n);
        m->result = regs[0];
        emu_reg_write(n, op[1].reg.value, regs[1]);
        return EMU_MMIO_DONE;
    case F_CMPXCHG:
        /* the destination is written either way (SDM vol. 2A CMPXCHG); the accumulator only
         * when the comparison fails */
        regs[0] = emu_reg_read(n, accumulator(bytes));
        regs[1] = emu_reg_read(n, op[1].reg.value);
        regs[2] = m->value;
        fastop(fop, bytes, regs, n);
        m->result = regs[2];
        if (!(n->rflags & X86_EFLAGS_ZF))
            emu_reg_write(n, accumulator(bytes), regs[0]);
        return EMU_MMIO_DONE;
    case F_CMPXCHG8B: {
        uint64_t expect = (n->gpr[X86_RDX] << 32) | (uint32_t)n->gpr[X86_RAX];
        bool equal = m->value == expect;
        if (equal)
            m->result = (n->gpr[X86_RCX] << 32) | (uint32_t)n->gpr[X86_RBX];
        else {
            m->result = m->value;
            n->gpr[X86_RAX] = (uint32_t)m->value;
            n->gpr[X86_RDX] = m->value >> 32;
        }
        n->rflags = equal ? n->rflags | X86_EFLAGS_ZF : n->rflags & ~(uint64_t)X86_EFLAGS_ZF;
        return EMU_MMIO_DONE;
    }
    case F_MULDIV:
        if ((mn == ZYDIS_MNEMONIC_DIV || mn == ZYDIS_MNEMONIC_IDIV) && divide_error(m, bytes)) {
            emu_raise(res, EMU_DE, false, 0);
            return EMU_MMIO_EXCEPTION;
        }
        if (mn == ZYDIS_MNEMONIC_IMUL)
            fop = emu_fop_imul1;
        regs[0] = n->gpr[X86_RAX];
        regs[1] = n->gpr[X86_RDX];
        regs[2] = m->value;
        fastop(fop, bytes, regs, n);
        if (bytes == 1) {
            emu_reg_write(n, ZYDIS_REGISTER_AX, regs[0]);
        } else {
            emu_reg_write(n, accumulator(bytes), regs[0]);
            emu_reg_write(n, data_register(bytes), regs[1]);
        }
        return EMU_MMIO_DONE;
    case F_IMUL:
        regs[0] = insn->info.operand_count_visible == 3 ? op[2].imm.value.u
                                                        : emu_reg_read(n, op[0].reg.value);
        regs[1] = m->value;
        fastop(fop, bytes, regs, n);
        emu_reg_write(n, op[0].reg.value, regs[0]);
        return EMU_MMIO_DONE;
    case F_BITSCAN:
        regs[0] = emu_reg_read(n, op[0].reg.value);
        regs[1] = m->value;
        fastop(fop, bytes, regs, n);
        /* BSF/BSR of 0 set ZF and leave the destination unwritten, not even zero-extended
         * (AMD APM vol. 3 BSF; what Intel CPUs do for the "undefined" destination) */
        if (!((mn == ZYDIS_MNEMONIC_BSF || mn == ZYDIS_MNEMONIC_BSR) &&
              (n->rflags & X86_EFLAGS_ZF)))
            emu_reg_write(n, op[0].reg.value, regs[0]);
        return EMU_MMIO_DONE;
    case F_PUSH:
        m->result = m->load ? m->value : operand_value(n, &op[0]);
        n->gpr[X86_RSP] -= width;
        return EMU_MMIO_DONE;
    case F_POP:
        n->gpr[X86_RSP] += width;
        if (op[0].type == ZYDIS_OPERAND_TYPE_REGISTER)
            emu_reg_write(n, op[0].reg.value, m->value); /* POP RSP: the value wins */
        else
            m->result = m->value;
        return EMU_MMIO_DONE;
    case F_CALL:
    case F_JMP: {
        uint64_t target;
        if (m->load)
            target = m->value;
        else if (op[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
            target = insn->rip + insn->length + op[0].imm.value.u;
        else
            target = emu_reg_read(n, op[0].reg.value);
        if (!emu_canonical(target)) {
            emu_raise(res, EMU_GP, true, 0);
            return EMU_MMIO_EXCEPTION;
        }
        if (m->form == F_CALL) {
            m->result = insn->rip + insn->length;
            n->gpr[X86_RSP] -= 8;
        }
        n->rip = target;
        return EMU_MMIO_DONE;
    }
    case F_RET:
        if (!emu_canonical(m->value)) {
            emu_raise(res, EMU_GP, true, 0);
            return EMU_MMIO_EXCEPTION;
        }
        n->rip = m->value;
        n->gpr[X86_RSP] += 8 + (op[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE ? op[0].imm.value.u : 0);
        return EMU_MMIO_DONE;
    case F_PUSHF:
        /* the image has VM and RF clear (SDM vol. 2B PUSHF) */
        m->result = n->rflags & ~(uint64_t)(X86_EFLAGS_RF | X86_EFLAGS_VM);
        n->gpr[X86_RSP] -= width;
        return EMU_MMIO_DONE;
    case F_POPF: {
        uint64_t mask = width == 2 ? (RFLAGS_WRITABLE & 0xFFFF) : RFLAGS_WRITABLE;
        n->rflags = (n->rflags & ~mask) | (m->value & mask) | X86_EFLAGS_FIXED;
        n->gpr[X86_RSP] += width;
        return EMU_MMIO_DONE;
    }
    case F_LEAVE:
        n->gpr[X86_RSP] = n->gpr[X86_RBP] + width;
        emu_reg_write(n, width == 2 ? ZYDIS_REGISTER_BP : ZYDIS_REGISTER_RBP, m->value);
        return EMU_MMIO_DONE;
    case F_ENTER: /* ENTER size, 0: push RBP, RBP = RSP, RSP -= size (SDM vol. 2A ENTER) */
        m->result = n->gpr[X86_RBP];
        n->gpr[X86_RSP] -= width;
        emu_reg_write(n, width == 2 ? ZYDIS_REGISTER_BP : ZYDIS_REGISTER_RBP, n->gpr[X86_RSP]);
        n->gpr[X86_RSP] -= op[0].imm.value.u & 0xFFFF;
        return EMU_MMIO_DONE;
    default:
        return emu_mmio_unsupported(m, "no MMIO emulation for it");
    }
}
