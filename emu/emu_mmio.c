/* emu_mmio.c - instructions with an MMIO memory operand (see emu_mmio.h).
 *
 * Every supported instruction is described by its form: where it loads from, where it stores
 * to (each a RAM or an MMIO location, or none) and how the result is computed. The three
 * steps are then the same for all: load (an MMIO read exit, or RAM directly), compute (on a
 * copy of the state, arithmetic by emu_fastop.S), store (an MMIO write exit, or RAM). The
 * copy becomes the vCPU's state only when the instruction retires, so an exception, or the
 * VMM ending the run at an exit, leaves the guest state as it was before the instruction.
 */
#include "emu_mmio.h"

#include <stddef.h>
#include <string.h>

#include "emu_internal.h"
#include "../vmm/guest_layout.h"

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
    F_STRING,
};

enum phase { PH_NONE, PH_READ, PH_WRITE };

#define ARITH_FLAGS                                                                                \
    (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_OF)

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

static const struct {
    ZydisMnemonic mnemonic;
    uint8_t form;
    const uint8_t *fop;
} forms[] = {
    {ZYDIS_MNEMONIC_MOV, F_LOAD, NULL}, /* F_STORE when the memory operand is first */
    {ZYDIS_MNEMONIC_MOVZX, F_LOAD, NULL},
    {ZYDIS_MNEMONIC_MOVSX, F_LOAD, NULL},
    {ZYDIS_MNEMONIC_MOVSXD, F_LOAD, NULL},
    {ZYDIS_MNEMONIC_MOVBE, F_LOAD, NULL},
    {ZYDIS_MNEMONIC_MOVNTI, F_STORE, NULL},
    {ZYDIS_MNEMONIC_ADD, F_ALU, emu_fop_add},
    {ZYDIS_MNEMONIC_OR, F_ALU, emu_fop_or},
    {ZYDIS_MNEMONIC_ADC, F_ALU, emu_fop_adc},
    {ZYDIS_MNEMONIC_SBB, F_ALU, emu_fop_sbb},
    {ZYDIS_MNEMONIC_AND, F_ALU, emu_fop_and},
    {ZYDIS_MNEMONIC_SUB, F_ALU, emu_fop_sub},
    {ZYDIS_MNEMONIC_XOR, F_ALU, emu_fop_xor},
    {ZYDIS_MNEMONIC_CMP, F_ALU, emu_fop_cmp},
    {ZYDIS_MNEMONIC_TEST, F_ALU, emu_fop_test},
    {ZYDIS_MNEMONIC_INC, F_ALU1, emu_fop_inc},
    {ZYDIS_MNEMONIC_DEC, F_ALU1, emu_fop_dec},
    {ZYDIS_MNEMONIC_NEG, F_ALU1, emu_fop_neg},
    {ZYDIS_MNEMONIC_NOT, F_ALU1, emu_fop_not},
    {ZYDIS_MNEMONIC_ROL, F_SHIFT, emu_fop_rol},
    {ZYDIS_MNEMONIC_ROR, F_SHIFT, emu_fop_ror},
    {ZYDIS_MNEMONIC_RCL, F_SHIFT, emu_fop_rcl},
    {ZYDIS_MNEMONIC_RCR, F_SHIFT, emu_fop_rcr},
    {ZYDIS_MNEMONIC_SHL, F_SHIFT, emu_fop_shl},
    {ZYDIS_MNEMONIC_SHR, F_SHIFT, emu_fop_shr},
    {ZYDIS_MNEMONIC_SAR, F_SHIFT, emu_fop_sar},
    {ZYDIS_MNEMONIC_SHLD, F_SHXD, emu_fop_shld},
    {ZYDIS_MNEMONIC_SHRD, F_SHXD, emu_fop_shrd},
    {ZYDIS_MNEMONIC_BT, F_BT, emu_fop_bt},
    {ZYDIS_MNEMONIC_BTS, F_BT, emu_fop_bts},
    {ZYDIS_MNEMONIC_BTR, F_BT, emu_fop_btr},
    {ZYDIS_MNEMONIC_BTC, F_BT, emu_fop_btc},
    {ZYDIS_MNEMONIC_XCHG, F_XCHG, NULL},
    {ZYDIS_MNEMONIC_XADD, F_XADD, emu_fop_xadd},
    {ZYDIS_MNEMONIC_CMPXCHG, F_CMPXCHG, emu_fop_cmpxchg},
    {ZYDIS_MNEMONIC_CMPXCHG8B, F_CMPXCHG8B, NULL},
    {ZYDIS_MNEMONIC_MUL, F_MULDIV, emu_fop_mul},
    {ZYDIS_MNEMONIC_DIV, F_MULDIV, emu_fop_div},
    {ZYDIS_MNEMONIC_IDIV, F_MULDIV, emu_fop_idiv},
    {ZYDIS_MNEMONIC_IMUL, F_IMUL, emu_fop_imul}, /* F_MULDIV with one operand */
    {ZYDIS_MNEMONIC_BSF, F_BITSCAN, emu_fop_bsf},
    {ZYDIS_MNEMONIC_BSR, F_BITSCAN, emu_fop_bsr},
    {ZYDIS_MNEMONIC_POPCNT, F_BITSCAN, emu_fop_popcnt},
    {ZYDIS_MNEMONIC_LZCNT, F_BITSCAN, emu_fop_lzcnt},
    {ZYDIS_MNEMONIC_TZCNT, F_BITSCAN, emu_fop_tzcnt},
    {ZYDIS_MNEMONIC_PUSH, F_PUSH, NULL},
    {ZYDIS_MNEMONIC_POP, F_POP, NULL},
    {ZYDIS_MNEMONIC_CALL, F_CALL, NULL},
    {ZYDIS_MNEMONIC_JMP, F_JMP, NULL},
    {ZYDIS_MNEMONIC_RET, F_RET, NULL},
    {ZYDIS_MNEMONIC_PUSHFQ, F_PUSHF, NULL},
    {ZYDIS_MNEMONIC_PUSHF, F_PUSHF, NULL},
    {ZYDIS_MNEMONIC_POPFQ, F_POPF, NULL},
    {ZYDIS_MNEMONIC_POPF, F_POPF, NULL},
    {ZYDIS_MNEMONIC_LEAVE, F_LEAVE, NULL},
    {ZYDIS_MNEMONIC_ENTER, F_ENTER, NULL},
};

/* ---- helpers ---- */

static enum emu_mmio_status unsupported(struct emu_mmio *m, const char *what)
{
    char text[64];
    x86_format(&m->insn, text, sizeof(text));
    size_t n = 0;
    const char *parts[] = {"MMIO access by an instruction vmlab does not emulate (", what,
                           "): ", text};
    for (unsigned i = 0; i < 4; i++)
        for (const char *p = parts[i]; *p && n + 1 < sizeof(m->why); p++)
            m->why[n++] = *p;
    m->why[n] = 0;
    return EMU_MMIO_UNSUPPORTED;
}

static bool in_mmio_window(uint64_t a)
{
    return a >= GUEST_RAM_END && a < GUEST_SPACE_END;
}

/* 1: [a, a+n) is MMIO, 0: it is not (RAM, or nothing: a direct access then faults as it
 * should), -1: it straddles the MMIO window's edge. */
static int mmio_location(uint64_t a, unsigned n)
{
    bool first = in_mmio_window(a), last = in_mmio_window(a + n - 1);
    if (first && last && a + n - 1 >= a)
        return 1;
    return first || last ? -1 : 0;
}

static uint64_t width_mask(unsigned bytes)
{
    return bytes >= 8 ? ~0ULL : (1ULL << (8 * bytes)) - 1;
}

static uint64_t sign_extend(uint64_t v, unsigned bytes)
{
    unsigned shift = 64 - 8 * bytes;
    return bytes >= 8 ? v : (uint64_t)((int64_t)(v << shift) >> shift);
}

static uint64_t byte_swap(uint64_t v, unsigned bytes)
{
    uint64_t r = 0;
    for (unsigned i = 0; i < bytes; i++)
        r |= ((v >> (8 * i)) & 0xFF) << (8 * (bytes - 1 - i));
    return r;
}

static unsigned log2_bytes(unsigned bytes)
{
    return bytes == 1 ? 0 : bytes == 2 ? 1 : bytes == 4 ? 2 : 3;
}

/* Run a fastop: RAX, RDX, RCX in/out, the arithmetic flags of s->rflags in/out. */
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

static bool is_setcc(const struct x86_decoded_insn *insn)
{
    return insn->info.opcode_map == ZYDIS_OPCODE_MAP_0F && (insn->info.opcode & 0xF0) == 0x90;
}

static bool is_cmovcc(const struct x86_decoded_insn *insn)
{
    return insn->info.opcode_map == ZYDIS_OPCODE_MAP_0F && (insn->info.opcode & 0xF0) == 0x40;
}

static int explicit_memory_operand(const struct x86_decoded_insn *insn)
{
    for (unsigned i = 0; i < insn->info.operand_count_visible; i++)
        if (insn->operands[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
            insn->operands[i].mem.type == ZYDIS_MEMOP_TYPE_MEM)
            return (int)i;
    return -1;
}

static uint64_t operand_value(const struct vcpu_state *s, const ZydisDecodedOperand *op)
{
    if (op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
        return op->imm.value.u;
    return emu_reg_read(s, op->reg.value);
}

static ZydisRegister accumulator(unsigned bytes)
{
    return bytes == 1   ? ZYDIS_REGISTER_AL
           : bytes == 2 ? ZYDIS_REGISTER_AX
           : bytes == 4 ? ZYDIS_REGISTER_EAX
                        : ZYDIS_REGISTER_RAX;
}

static ZydisRegister data_register(unsigned bytes) /* DX, EDX, RDX */
{
    return bytes == 2 ? ZYDIS_REGISTER_DX : bytes == 4 ? ZYDIS_REGISTER_EDX : ZYDIS_REGISTER_RDX;
}

/* ---- planning: where the instruction loads and stores ---- */

static enum emu_mmio_status plan_string(struct emu_ctx *ctx, struct emu_mmio *m)
{
    const struct x86_decoded_insn *insn = &m->insn;
    const struct vcpu_state *s = ctx->state;
    uint8_t op = insn->info.opcode;
    if (insn->info.address_width != 64)
        return unsupported(m, "32-bit addresses");
    unsigned bytes = (op & 1) ? insn->info.operand_width / 8 : 1;
    uint64_t src = s->gpr[X86_RSI], dst = s->gpr[X86_RDI];
    /* the source may have a segment override; only FS and GS have a base (SDM vol. 3A 3.2.4) */
    for (unsigned i = 0; i < insn->info.operand_count; i++) {
        const ZydisDecodedOperand *o = &insn->operands[i];
        if (o->type == ZYDIS_OPERAND_TYPE_MEMORY && o->mem.base == ZYDIS_REGISTER_RSI)
            src += o->mem.segment == ZYDIS_REGISTER_FS   ? s->fs.base
                   : o->mem.segment == ZYDIS_REGISTER_GS ? s->gs.base
                                                         : 0;
    }
    m->form = F_STRING;
    switch (op & ~1) {
    case 0xA4: /* MOVS */
        m->load = m->store = true;
        m->load_addr = src;
        m->store_addr = dst;
        break;
    case 0xA6: /* CMPS: two loads, the MMIO one by exit, the other directly */
        m->load = true;
        if (mmio_location(src, bytes) == 1 && mmio_location(dst, bytes) == 1)
            return unsupported(m, "two MMIO operands");
        m->cmps_src_by_exit = mmio_location(src, bytes) == 1;
        m->load_addr = m->cmps_src_by_exit ? src : dst;
        m->other_addr = m->cmps_src_by_exit ? dst : src; /* the other load, from RAM */
        break;
    case 0xAA: /* STOS */
        m->store = true;
        m->store_addr = dst;
        break;
    case 0xAC: /* LODS */
        m->load = true;
        m->load_addr = src;
        break;
    case 0xAE: /* SCAS */
        m->load = true;
        m->load_addr = dst;
        break;
    default:
        return unsupported(m, "string form");
    }
    m->load_size = m->store_size = bytes;
    return EMU_MMIO_DONE;
}

static enum emu_mmio_status plan(struct emu_ctx *ctx, struct emu_mmio *m, struct emu_result *res)
{
    const struct x86_decoded_insn *insn = &m->insn;
    const struct vcpu_state *s = ctx->state;
    for (unsigned i = 0; i < insn->info.operand_count; i++) {
        const ZydisDecodedOperand *o = &insn->operands[i];
        if (o->type != ZYDIS_OPERAND_TYPE_REGISTER)
            continue;
        ZydisRegisterClass c = ZydisRegisterGetClass(o->reg.value);
        if (c == ZYDIS_REGCLASS_XMM || c == ZYDIS_REGCLASS_YMM || c == ZYDIS_REGCLASS_ZMM ||
            c == ZYDIS_REGCLASS_MMX || c == ZYDIS_REGCLASS_X87 || c == ZYDIS_REGCLASS_MASK)
            return unsupported(m, "vector or x87 register operand");
    }
    if (insn->info.encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY)
        return unsupported(m, "VEX/EVEX encoding");
    if (insn->info.opcode_map == ZYDIS_OPCODE_MAP_DEFAULT && insn->info.opcode >= 0xA4 &&
        insn->info.opcode <= 0xAF && insn->info.opcode != 0xA8 && insn->info.opcode != 0xA9)
        return plan_string(ctx, m);

    m->form = F_NONE;
    for (unsigned i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
        if (forms[i].mnemonic == insn->info.mnemonic)
            m->form = forms[i].form;
    if (is_setcc(insn))
        m->form = F_STORE;
    if (is_cmovcc(insn))
        m->form = F_LOAD;
    if (m->form == F_NONE)
        return unsupported(m, "no MMIO emulation for it");
    if (insn->info.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
        return unsupported(m, "far transfer");

    int mi = explicit_memory_operand(insn);
    uint64_t maddr = 0;
    unsigned mbytes = 0;
    if (mi >= 0) {
        const ZydisDecodedOperand *mo = &insn->operands[mi];
        if (!emu_mem_address(s, insn, mo, &maddr)) {
            emu_raise(res, EMU_GP, true, 0);
            return EMU_MMIO_EXCEPTION;
        }
        mbytes = mo->size / 8;
        if (mbytes == 0 || mbytes > 8)
            return unsupported(m, "operand wider than 8 bytes");
    }
    unsigned width = insn->info.operand_width / 8;
    uint64_t rsp = s->gpr[X86_RSP];
    switch (m->form) {
    case F_LOAD:
        if (mi == 0 && (insn->info.mnemonic == ZYDIS_MNEMONIC_MOV ||
                        insn->info.mnemonic == ZYDIS_MNEMONIC_MOVBE)) {
            m->form = F_STORE;
            m->store = true;
            m->store_addr = maddr;
            m->store_size = mbytes;
            return EMU_MMIO_DONE;
        }
        if (mi != 1 || insn->operands[0].type != ZYDIS_OPERAND_TYPE_REGISTER)
            return unsupported(m, "operand form");
        if (ZydisRegisterGetClass(insn->operands[0].reg.value) == ZYDIS_REGCLASS_SEGMENT)
            return unsupported(m, "segment register load");
        m->load = true;
        m->load_addr = maddr;
        m->load_size = mbytes;
        return EMU_MMIO_DONE;
    case F_STORE:
        if (mi != 0)
            return unsupported(m, "operand form");
        m->store = true;
        m->store_addr = maddr;
        m->store_size = mbytes;
        return EMU_MMIO_DONE;
    case F_ALU:
    case F_XCHG:
        if (mi < 0)
            return unsupported(m, "operand form");
        m->load = true;
        m->load_addr = m->store_addr = maddr;
        m->load_size = m->store_size = mbytes;
        m->store = (mi == 0 || m->form == F_XCHG) && insn->info.mnemonic != ZYDIS_MNEMONIC_CMP &&
                   insn->info.mnemonic != ZYDIS_MNEMONIC_TEST;
        return EMU_MMIO_DONE;
    case F_ALU1:
    case F_SHIFT:
    case F_SHXD:
    case F_XADD:
    case F_CMPXCHG:
    case F_CMPXCHG8B:
        if (mi != 0)
            return unsupported(m, "operand form");
        m->load = m->store = true;
        m->load_addr = m->store_addr = maddr;
        m->load_size = m->store_size = mbytes;
        return EMU_MMIO_DONE;
    case F_BT: {
        if (mi != 0)
            return unsupported(m, "operand form");
        const ZydisDecodedOperand *bo = &insn->operands[1];
        if (bo->type == ZYDIS_OPERAND_TYPE_REGISTER) {
            /* A register bit offset is signed and may reach beyond the operand: the byte
             * address moves by whole operands (SDM vol. 2A BT, "bit base, bit offset"). */
            int64_t off = (int64_t)sign_extend(emu_reg_read(s, bo->reg.value), mbytes);
            maddr += (uint64_t)((off >> (3 + log2_bytes(mbytes))) * (int64_t)mbytes);
        }
        m->load = true;
        m->store = insn->info.mnemonic != ZYDIS_MNEMONIC_BT;
        m->load_addr = m->store_addr = maddr;
        m->load_size = m->store_size = mbytes;
        return EMU_MMIO_DONE;
    }
    case F_IMUL:
        if (insn->info.operand_count_visible == 1)
            m->form = F_MULDIV;
        __attribute__((fallthrough));
    case F_MULDIV:
    case F_BITSCAN:
        if (mi < 0)
            return unsupported(m, "operand form");
        m->load = true;
        m->load_addr = maddr;
        m->load_size = mbytes;
        return EMU_MMIO_DONE;
    case F_PUSH:
        if (mi >= 0) {
            m->load = true;
            m->load_addr = maddr;
            m->load_size = mbytes;
        }
        m->store = true;
        m->store_addr = rsp - width;
        m->store_size = width;
        return EMU_MMIO_DONE;
    case F_POP:
        if (mi < 0 && insn->operands[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
            ZydisRegisterGetClass(insn->operands[0].reg.value) == ZYDIS_REGCLASS_SEGMENT)
            return unsupported(m, "segment register load");
        m->load = true;
        m->load_addr = rsp;
        m->load_size = width;
        if (mi >= 0) {
            /* POP r/m computes a RSP-based address with RSP already incremented (SDM vol. 2B
             * POP) */
            struct vcpu_state after = *s;
            after.gpr[X86_RSP] += width;
            emu_mem_address(&after, insn, &insn->operands[mi], &maddr);
            m->store = true;
            m->store_addr = maddr;
            m->store_size = mbytes;
        }
        return EMU_MMIO_DONE;
    case F_CALL:
        if (mi >= 0) {
            m->load = true;
            m->load_addr = maddr;
            m->load_size = 8;
        }
        m->store = true;
        m->store_addr = rsp - 8;
        m->store_size = 8;
        return EMU_MMIO_DONE;
    case F_JMP:
        if (mi < 0)
            return unsupported(m, "operand form");
        m->load = true;
        m->load_addr = maddr;
        m->load_size = 8;
        return EMU_MMIO_DONE;
    case F_RET:
    case F_POPF:
        m->load = true;
        m->load_addr = rsp;
        m->load_size = m->form == F_RET ? 8 : width;
        return EMU_MMIO_DONE;
    case F_PUSHF:
        m->store = true;
        m->store_addr = rsp - width;
        m->store_size = width;
        return EMU_MMIO_DONE;
    case F_LEAVE:
        m->load = true;
        m->load_addr = s->gpr[X86_RBP];
        m->load_size = width;
        return EMU_MMIO_DONE;
    case F_ENTER:
        if ((insn->operands[1].imm.value.u & 0x1F) != 0)
            return unsupported(m, "nesting level above 0");
        m->store = true;
        m->store_addr = rsp - width;
        m->store_size = width;
        return EMU_MMIO_DONE;
    default:
        return unsupported(m, "no MMIO emulation for it");
    }
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
        struct emu_ctx c = {.state = n, .mem = ctx->mem};
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

static enum emu_mmio_status compute(struct emu_ctx *ctx, struct emu_mmio *m, struct emu_result *res)
{
    const struct x86_decoded_insn *insn = &m->insn;
    struct vcpu_state *n = &m->next;
    const ZydisDecodedOperand *op = insn->operands;
    ZydisMnemonic mn = insn->info.mnemonic;
    unsigned bytes = m->load ? m->load_size : m->store_size;
    unsigned width = insn->info.operand_width / 8;
    uint64_t regs[3] = {0, 0, 0};
    const uint8_t *fop = NULL;
    for (unsigned i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
        if (forms[i].mnemonic == mn)
            fop = forms[i].fop;
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
        return unsupported(m, "no MMIO emulation for it");
    }
}

/* ---- the steps ---- */

static enum emu_mmio_status do_store(struct emu_ctx *ctx, struct emu_mmio *m,
                                     struct emu_result *res)
{
    if (m->store) {
        uint64_t v = m->result & width_mask(m->store_size);
        if (m->store_mmio) {
            m->phase = PH_WRITE;
            memset(&m->access, 0, sizeof(m->access));
            m->access.gpa = m->store_addr;
            m->access.len = m->store_size;
            m->access.is_write = true;
            memcpy(m->access.data, &v, m->store_size);
            return EMU_MMIO_ACCESS;
        }
        struct emu_ctx c = {.state = &m->next, .mem = ctx->mem};
        if (!emu_write(&c, m->store_addr, &v, m->store_size, res))
            return EMU_MMIO_EXCEPTION;
    }
    *ctx->state = m->next;
    m->phase = PH_NONE;
    return EMU_MMIO_DONE;
}

static enum emu_mmio_status after_load(struct emu_ctx *ctx, struct emu_mmio *m,
                                       struct emu_result *res)
{
    enum emu_mmio_status st = compute(ctx, m, res);
    if (st != EMU_MMIO_DONE)
        return st;
    return do_store(ctx, m, res);
}

enum emu_mmio_status emu_mmio_start(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                                    struct emu_mmio *m, struct emu_result *res)
{
    memset(m, 0, offsetof(struct emu_mmio, insn));
    m->insn = *insn;
    m->next = *ctx->state;
    m->load = m->store = m->load_mmio = m->store_mmio = m->cmps_src_by_exit = false;
    m->value = m->result = 0;
    m->phase = PH_NONE;
    enum emu_mmio_status st = plan(ctx, m, res);
    if (st != EMU_MMIO_DONE)
        return st;
    int l = m->load ? mmio_location(m->load_addr, m->load_size) : 0;
    int s = m->store ? mmio_location(m->store_addr, m->store_size) : 0;
    if (l < 0 || s < 0)
        return unsupported(m, "access straddles RAM and MMIO");
    m->load_mmio = l == 1;
    m->store_mmio = s == 1;
    if (!m->load_mmio && !m->store_mmio)
        return unsupported(m, "its MMIO access is not one vmlab models");
    if (m->load && m->load_mmio) {
        m->phase = PH_READ;
        memset(&m->access, 0, sizeof(m->access));
        m->access.gpa = m->load_addr;
        m->access.len = m->load_size;
        return EMU_MMIO_ACCESS;
    }
    if (m->load) {
        struct emu_ctx c = {.state = &m->next, .mem = ctx->mem};
        if (!emu_read(&c, m->load_addr, &m->value, m->load_size, res))
            return EMU_MMIO_EXCEPTION;
    }
    return after_load(ctx, m, res);
}

enum emu_mmio_status emu_mmio_continue(struct emu_ctx *ctx, struct emu_mmio *m,
                                       const uint8_t *read_data, struct emu_result *res)
{
    switch (m->phase) {
    case PH_READ:
        m->value = 0;
        memcpy(&m->value, read_data, m->load_size);
        return after_load(ctx, m, res);
    case PH_WRITE:
        *ctx->state = m->next;
        m->phase = PH_NONE;
        return EMU_MMIO_DONE;
    default:
        return EMU_MMIO_DONE;
    }
}
