/* mmio_emulate.c - decode and complete MMIO data moves (see mmio_emulate.h). */
#include "mmio_emulate.h"

#include <errno.h>
#include <string.h>

#include "../emu/emu.h"

static const ZydisDecodedOperand *find_operand(const struct x86_decoded_insn *insn,
                                               ZydisOperandType type, unsigned *index)
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
                v = emu_reg_read(state, src->reg.value);
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
             insn->info.mnemonic == ZYDIS_MNEMONIC_MOVSXD) &&
            bits < 64 && (v >> (bits - 1)) & 1)
            v |= ~0ULL << bits;
        const ZydisDecodedOperand *dst = &insn->operands[0];
        emu_reg_write(state, dst->reg.value, v);
    }
    state->rip += insn->length;
}
