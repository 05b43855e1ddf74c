/* emu_mmio.c - instructions with an MMIO memory operand (see emu_mmio.h).
 *
 * Every supported instruction is described by its form: where it loads from, where it stores
 * to (each a RAM or an MMIO location, or none) and how the result is computed. The three
 * steps are then the same for all: load (an MMIO read exit, or RAM directly), compute (on a
 * copy of the state, arithmetic by emu_fastop.S; emu_mmio_compute.c), store (an MMIO write
 * exit, or RAM). The copy becomes the vCPU's state only when the instruction retires, so an
 * exception, or the VMM ending the run at an exit, leaves the guest state as it was before.
 * This file plans the accesses and runs the steps.
 */
#include <stddef.h>
#include <string.h>

#include "../mmu/page_walk.h"
#include "../vmm/guest_layout.h"
#include "emu_mmio_internal.h"

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
    {ZYDIS_MNEMONIC_CLFLUSH, F_CACHE, NULL},
    {ZYDIS_MNEMONIC_CLFLUSHOPT, F_CACHE, NULL},
    {ZYDIS_MNEMONIC_CLWB, F_CACHE, NULL},
};

uint8_t emu_mmio_form_of(ZydisMnemonic mnemonic, const uint8_t **fop)
{
    for (unsigned i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
        if (forms[i].mnemonic == mnemonic) {
            if (fop)
                *fop = forms[i].fop;
            return forms[i].form;
        }
    if (fop)
        *fop = NULL;
    return F_NONE;
}

enum emu_mmio_status emu_mmio_unsupported(struct emu_mmio *m, const char *what)
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

int emu_mmio_locate(const struct emu_ctx *ctx, uint64_t a, unsigned n, bool write, uint64_t *gpa)
{
    /* the walk the access itself makes (accessed/dirty flags included, SDM vol. 3A 4.8) */
    struct mmu_paging pg;
    mmu_paging_from_state(ctx->state, &pg);
    unsigned access = write ? MMU_WRITE : MMU_READ;
    struct mmu_walk first, last;
    if (mmu_walk(ctx->mem, &pg, a, access, &first) != MMU_WALK_OK)
        return 0; /* the direct access raises the fault */
    uint64_t end = a + n - 1, last_gpa = first.gpa + n - 1;
    if ((a >> 12) != (end >> 12)) { /* crosses a page: the second part has its own walk */
        if (mmu_walk(ctx->mem, &pg, end, access, &last) != MMU_WALK_OK)
            return in_mmio_window(first.gpa) ? -1 : 0;
        last_gpa = last.gpa;
    }
    bool mmio_first = in_mmio_window(first.gpa), mmio_last = in_mmio_window(last_gpa);
    if (!mmio_first && !mmio_last)
        return 0;
    if (!mmio_first || !mmio_last || last_gpa != first.gpa + n - 1)
        return -1;
    *gpa = first.gpa;
    return 1;
}

static int explicit_memory_operand(const struct x86_decoded_insn *insn)
{
    for (unsigned i = 0; i < insn->info.operand_count_visible; i++)
        if (insn->operands[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
            insn->operands[i].mem.type == ZYDIS_MEMOP_TYPE_MEM)
            return (int)i;
    return -1;
}

/* ---- planning: where the instruction loads and stores ---- */

static enum emu_mmio_status plan_string(struct emu_ctx *ctx, struct emu_mmio *m)
{
    const struct x86_decoded_insn *insn = &m->insn;
    const struct vcpu_state *s = ctx->state;
    uint8_t op = insn->info.opcode;
    if (insn->info.address_width != 64)
        return emu_mmio_unsupported(m, "32-bit addresses");
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
        uint64_t unused;
        int src_mmio = emu_mmio_locate(ctx, src, bytes, false, &unused);
        if (src_mmio == 1 && emu_mmio_locate(ctx, dst, bytes, false, &unused) == 1)
            return emu_mmio_unsupported(m, "two MMIO operands");
        m->cmps_src_by_exit = src_mmio == 1;
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
        return emu_mmio_unsupported(m, "string form");
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
            return emu_mmio_unsupported(m, "vector or x87 register operand");
    }
    if (insn->info.encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY)
        return emu_mmio_unsupported(m, "VEX/EVEX encoding");
    if (insn->info.opcode_map == ZYDIS_OPCODE_MAP_DEFAULT && insn->info.opcode >= 0xA4 &&
        insn->info.opcode <= 0xAF && insn->info.opcode != 0xA8 && insn->info.opcode != 0xA9)
        return plan_string(ctx, m);

    m->form = emu_mmio_form_of(insn->info.mnemonic, NULL);
    if (is_setcc(insn))
        m->form = F_STORE;
    if (is_cmovcc(insn))
        m->form = F_LOAD;
    if (m->form == F_NONE)
        return emu_mmio_unsupported(m, "no MMIO emulation for it");
    if (insn->info.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
        return emu_mmio_unsupported(m, "far transfer");

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
        if ((mbytes == 0 || mbytes > 8) && m->form != F_CACHE) /* CLFLUSH names a line */
            return emu_mmio_unsupported(m, "operand wider than 8 bytes");
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
            return emu_mmio_unsupported(m, "operand form");
        if (ZydisRegisterGetClass(insn->operands[0].reg.value) == ZYDIS_REGCLASS_SEGMENT)
            return emu_mmio_unsupported(m, "segment register load");
        m->load = true;
        m->load_addr = maddr;
        m->load_size = mbytes;
        return EMU_MMIO_DONE;
    case F_STORE:
        if (mi != 0)
            return emu_mmio_unsupported(m, "operand form");
        m->store = true;
        m->store_addr = maddr;
        m->store_size = mbytes;
        return EMU_MMIO_DONE;
    case F_ALU:
    case F_XCHG:
        if (mi < 0)
            return emu_mmio_unsupported(m, "operand form");
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
            return emu_mmio_unsupported(m, "operand form");
        m->load = m->store = true;
        m->load_addr = m->store_addr = maddr;
        m->load_size = m->store_size = mbytes;
        return EMU_MMIO_DONE;
    case F_BT: {
        if (mi != 0)
            return emu_mmio_unsupported(m, "operand form");
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
            return emu_mmio_unsupported(m, "operand form");
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
            return emu_mmio_unsupported(m, "segment register load");
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
            return emu_mmio_unsupported(m, "operand form");
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
    case F_CACHE: /* MMIO is uncached: nothing to write back (KVM: em_clflush) */
        if (mi < 0)
            return emu_mmio_unsupported(m, "operand form");
        m->load_addr = maddr; /* where, for emu_mmio_start's check; no access */
        m->load_size = 1;
        return EMU_MMIO_DONE;
    case F_ENTER:
        if ((insn->operands[1].imm.value.u & 0x1F) != 0)
            return emu_mmio_unsupported(m, "nesting level above 0");
        m->store = true;
        m->store_addr = rsp - width;
        m->store_size = width;
        return EMU_MMIO_DONE;
    default:
        return emu_mmio_unsupported(m, "no MMIO emulation for it");
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
            m->access.gpa = m->store_gpa;
            m->access.len = m->store_size;
            m->access.is_write = true;
            memcpy(m->access.data, &v, m->store_size);
            return EMU_MMIO_ACCESS;
        }
        struct emu_ctx c = *ctx;
        c.state = &m->next;
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
    enum emu_mmio_status st = emu_mmio_compute(ctx, m, res);
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
    if (m->form == F_CACHE) { /* no access at all; only a device address is ours */
        uint64_t unused;
        if (emu_mmio_locate(ctx, m->load_addr, 1, false, &unused) != 1)
            return emu_mmio_unsupported(m, "its MMIO access is not one vmlab models");
        ctx->state->rip = insn->rip + insn->length;
        return EMU_MMIO_DONE;
    }
    int l = m->load ? emu_mmio_locate(ctx, m->load_addr, m->load_size, false, &m->load_gpa) : 0;
    int s = m->store ? emu_mmio_locate(ctx, m->store_addr, m->store_size, true, &m->store_gpa) : 0;
    if (l < 0 || s < 0)
        return emu_mmio_unsupported(m, "access straddles RAM and MMIO");
    m->load_mmio = l == 1;
    m->store_mmio = s == 1;
    /* Neither is MMIO (a fault to deliver, or an access the backend's fault did not tell
     * apart): the steps below then do every access directly, faults included. */
    if (m->load && m->load_mmio) {
        m->phase = PH_READ;
        memset(&m->access, 0, sizeof(m->access));
        m->access.gpa = m->load_gpa;
        m->access.len = m->load_size;
        return EMU_MMIO_ACCESS;
    }
    if (m->load) {
        struct emu_ctx c = *ctx;
        c.state = &m->next;
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
