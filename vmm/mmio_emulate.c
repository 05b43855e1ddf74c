/* mmio_emulate.c - decode and complete MMIO data moves (see mmio_emulate.h). */
#include "mmio_emulate.h"

#include <errno.h>
#include <string.h>

/* Register value/assignment by Zydis register id, with x86-64 width rules (SDM vol. 1 3.4.1.1:
 * 32-bit destinations zero-extend to 64 bits, 8/16-bit destinations merge). */
static int gpr_index(ZydisRegister reg, unsigned *shift)
{
    *shift = 0;
    switch (reg) {
    case ZYDIS_REGISTER_AH: *shift = 8; return X86_RAX;
    case ZYDIS_REGISTER_CH: *shift = 8; return X86_RCX;
    case ZYDIS_REGISTER_DH: *shift = 8; return X86_RDX;
    case ZYDIS_REGISTER_BH: *shift = 8; return X86_RBX;
    default: break;
    }
    ZydisRegister wide = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, reg);
    if (wide < ZYDIS_REGISTER_RAX || wide > ZYDIS_REGISTER_R15)
        return -1;
    return (int)(wide - ZYDIS_REGISTER_RAX);
}

static uint64_t gpr_read(const struct vcpu_state *s, ZydisRegister reg, unsigned bits)
{
    unsigned shift;
    int idx = gpr_index(reg, &shift);
    if (idx < 0)
        return 0;
    uint64_t v = s->gpr[idx] >> shift;
    return bits >= 64 ? v : v & ((1ULL << bits) - 1);
}

static void gpr_write(struct vcpu_state *s, ZydisRegister reg, unsigned bits, uint64_t v)
{
    unsigned shift;
    int idx = gpr_index(reg, &shift);
    if (idx < 0)
        return;
    if (bits == 64) {
        s->gpr[idx] = v;
    } else if (bits == 32) {
        s->gpr[idx] = (uint32_t)v;
    } else {
        uint64_t mask = ((1ULL << bits) - 1) << shift;
        s->gpr[idx] = (s->gpr[idx] & ~mask) | ((v << shift) & mask);
    }
}

static const ZydisDecodedOperand *find_operand(const struct x86_decoded_insn *insn, ZydisOperandType type,
                                               unsigned *index)
{
    for (unsigned i = 0; i < insn->info.operand_count_visible; i++)
        if (insn->operands[i].type == type) {
            if (index)
                *index = i;
            return &insn->operands[i];
        }
    return NULL;
}

int mmio_decode(const struct x86_decoded_insn *insn, const struct vcpu_state *state, uint64_t gpa,
                struct mmio_access *out)
{
    unsigned mem_index;
    const ZydisDecodedOperand *mem = find_operand(insn, ZYDIS_OPERAND_TYPE_MEMORY, &mem_index);
    if (!mem)
        return -EOPNOTSUPP;
    memset(out, 0, sizeof(*out));
    out->gpa = gpa;
    out->len = (uint8_t)(mem->size / 8);
    if (out->len == 0 || out->len > 8)
        return -EOPNOTSUPP;
    switch (insn->info.mnemonic) {
    case ZYDIS_MNEMONIC_MOV:
        if (mem_index == 0) { /* store */
            const ZydisDecodedOperand *src = &insn->operands[1];
            uint64_t v;
            if (src->type == ZYDIS_OPERAND_TYPE_REGISTER)
                v = gpr_read(state, src->reg.value, src->size);
            else if (src->type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
                v = src->imm.value.u; /* already sign-extended to the operand size */
            else
                return -EOPNOTSUPP;
            out->is_write = true;
            memcpy(out->data, &v, out->len);
            return 0;
        }
        __attribute__((fallthrough)); /* a load */
    case ZYDIS_MNEMONIC_MOVZX:
    case ZYDIS_MNEMONIC_MOVSX:
    case ZYDIS_MNEMONIC_MOVSXD:
        if (mem_index != 1 || insn->operands[0].type != ZYDIS_OPERAND_TYPE_REGISTER)
            return -EOPNOTSUPP;
        out->is_write = false;
        return 0;
    default:
        return -EOPNOTSUPP;
    }
}

void mmio_complete(const struct x86_decoded_insn *insn, const struct mmio_access *access,
                   struct vcpu_state *state, const uint8_t *read_data)
{
    if (!access->is_write) {
        uint64_t v = 0;
        memcpy(&v, read_data, access->len);
        unsigned bits = access->len * 8;
        if ((insn->info.mnemonic == ZYDIS_MNEMONIC_MOVSX ||
             insn->info.mnemonic == ZYDIS_MNEMONIC_MOVSXD) && bits < 64 &&
            (v >> (bits - 1)) & 1)
            v |= ~0ULL << bits;
        const ZydisDecodedOperand *dst = &insn->operands[0];
        gpr_write(state, dst->reg.value, dst->size, v);
    }
    state->rip += insn->length;
}
