/* emu_mmio_internal.h - what the MMIO emulation's two files share (not a public interface). */
#ifndef VMLAB_EMU_MMIO_INTERNAL_H
#define VMLAB_EMU_MMIO_INTERNAL_H

#include "emu_internal.h"
#include "emu_mmio.h"

enum form {
    F_NONE,
    F_LOAD,  /* reg <- f(mem): MOV MOVZX MOVSX MOVSXD MOVBE CMOVcc */
    F_STORE, /* mem <- reg / imm / Sreg / condition: MOV MOVNTI MOVBE SETcc */
    F_ALU,   /* fastop on (op0, op1), op0 written back unless CMP/TEST */
    F_ALU1,  /* INC DEC NEG NOT */
    F_SHIFT, /* rotates and shifts by 1, CL, imm8 */
    F_SHXD,  /* SHLD SHRD */
    F_BT,    /* BT BTS BTR BTC */
    F_XCHG,
    F_XADD,
    F_CMPXCHG,
    F_CMPXCHG8B,
    F_MULDIV,  /* MUL IMUL DIV IDIV with one operand */
    F_IMUL,    /* IMUL r, r/m [, imm] */
    F_BITSCAN, /* BSF BSR POPCNT LZCNT TZCNT */
    F_PUSH,
    F_POP,
    F_CALL,
    F_JMP,
    F_RET,
    F_PUSHF,
    F_POPF,
    F_LEAVE,
    F_ENTER, /* level 0 only */
    F_CACHE, /* CLFLUSH CLFLUSHOPT CLWB: no access to an uncached device, a no-op as in KVM */
    F_STRING,
};

enum phase { PH_NONE, PH_READ, PH_WRITE };

#define ARITH_FLAGS                                                                                \
    (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_OF)

/* emu_fastop.S entries */
#define FOP(name) extern const uint8_t emu_fop_##name[];
FOP(add)
FOP(or)
FOP(adc)
FOP(sbb)
FOP(and)
FOP(sub)
FOP(xor)
FOP(cmp)
FOP(test)
FOP(xadd)
FOP(bt)
FOP(bts)
FOP(btr)
FOP(btc)
FOP(bsf)
FOP(bsr)
FOP(popcnt)
FOP(lzcnt)
FOP(tzcnt)
FOP(imul)
FOP(inc)
FOP(dec)
FOP(neg)
FOP(not )
FOP(rol)
FOP(ror)
FOP(rcl)
FOP(rcr)
FOP(shl)
FOP(shr)
FOP(sar)
FOP(mul)
FOP(imul1)
FOP(div)
FOP(idiv)
FOP(cmpxchg)
FOP(shld)
FOP(shrd)
#undef FOP

/* The form and fastop of a mnemonic (F_NONE and NULL when it has none). */
uint8_t emu_mmio_form_of(ZydisMnemonic mnemonic, const uint8_t **fop);
/* Name the instruction in m->why; returns EMU_MMIO_UNSUPPORTED. */
enum emu_mmio_status emu_mmio_unsupported(struct emu_mmio *m, const char *what);
/* Where the linear range [a, a+n) leads through the guest's page tables: 1 MMIO (*gpa, the
 * guest-physical address the device sees), 0 not MMIO (RAM, or a fault the direct access
 * then raises), -1 partly MMIO (it straddles the window's edge or a page boundary). */
int emu_mmio_locate(const struct emu_ctx *ctx, uint64_t a, unsigned n, bool write, uint64_t *gpa);
/* emu_mmio_compute.c: m->value loaded -> m->next, m->result (to store). */
enum emu_mmio_status emu_mmio_compute(struct emu_ctx *ctx, struct emu_mmio *m,
                                      struct emu_result *res);

static inline uint64_t width_mask(unsigned bytes)
{
    return bytes >= 8 ? ~0ULL : (1ULL << (8 * bytes)) - 1;
}

static inline uint64_t sign_extend(uint64_t v, unsigned bytes)
{
    unsigned shift = 64 - 8 * bytes;
    return bytes >= 8 ? v : (uint64_t)((int64_t)(v << shift) >> shift);
}

static inline uint64_t byte_swap(uint64_t v, unsigned bytes)
{
    uint64_t r = 0;
    for (unsigned i = 0; i < bytes; i++)
        r |= ((v >> (8 * i)) & 0xFF) << (8 * (bytes - 1 - i));
    return r;
}

static inline unsigned log2_bytes(unsigned bytes)
{
    return bytes == 1 ? 0 : bytes == 2 ? 1 : bytes == 4 ? 2 : 3;
}

/* Run a fastop: RAX, RDX, RCX in/out, the arithmetic flags of s->rflags in/out. */
static inline bool is_setcc(const struct x86_decoded_insn *insn)
{
    return insn->info.opcode_map == ZYDIS_OPCODE_MAP_0F && (insn->info.opcode & 0xF0) == 0x90;
}

static inline bool is_cmovcc(const struct x86_decoded_insn *insn)
{
    return insn->info.opcode_map == ZYDIS_OPCODE_MAP_0F && (insn->info.opcode & 0xF0) == 0x40;
}

static inline uint64_t operand_value(const struct vcpu_state *s, const ZydisDecodedOperand *op)
{
    if (op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
        return op->imm.value.u;
    return emu_reg_read(s, op->reg.value);
}

static inline ZydisRegister accumulator(unsigned bytes)
{
    return bytes == 1   ? ZYDIS_REGISTER_AL
           : bytes == 2 ? ZYDIS_REGISTER_AX
           : bytes == 4 ? ZYDIS_REGISTER_EAX
                        : ZYDIS_REGISTER_RAX;
}

static inline ZydisRegister data_register(unsigned bytes) /* DX, EDX, RDX */
{
    return bytes == 2 ? ZYDIS_REGISTER_DX : bytes == 4 ? ZYDIS_REGISTER_EDX : ZYDIS_REGISTER_RDX;
}

#endif
