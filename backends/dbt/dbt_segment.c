/* dbt_segment.c - FS- and GS-relative memory operands: the guest's segment bases, not the host's.
 *
 * In 64-bit mode an FS or GS override adds that segment's base to the effective address (SDM
 * vol. 3A 3.4.4); every other segment's base is 0. Translated code runs on the host's FS base
 * (its thread-local storage; glibc keeps the stack-protector canary at %fs:0x28) and GS base,
 * so a guest `mov %fs:0x28, %rbx` copied verbatim would read the host's canary where the guest,
 * whose FS base is 0 after reset, must get a #PF at linear address 0x28. Loading the guest's
 * bases into the registers on every entry (WRFSBASE) would cost every callout and block exit
 * two writes and make all host code, signal handlers included, restore the host's TLS first;
 * instead, as QEMU's TCG adds the segment base in the code it generates, the few instructions
 * that carry an FS/GS override are rewritten to address [R1], with R1 = base + effective address
 * computed from the guest's base in the context page (ctx.seg_base, written from the vCPU state
 * on every entry, so WRMSR, SWAPGS, WRFSBASE and segment loads, all emulated, take effect):
 *
 *     mov [seg_save], R1 ; mov [seg_save2], R2        two registers the instruction does not use
 *     lea R1, [ea]        (mov R1, imm64 for RIP-relative and absolute operands)
 *     mov R2, [seg_base]  ; lea R1, [R1 + R2] ; mov R2, [seg_save2]
 *     the instruction, re-encoded by Zydis with its memory operand [R1] and no override
 *     mov R1, [seg_save]
 *
 * No flag changes (MOV and LEA), so the instruction sees the guest's flags. Only the re-encoded
 * instruction can fault; its map entry records R1, so a fault there restores R1 from seg_save
 * (dbt_signal.c) and the guest state is exact. A 32-bit address size (67 prefix) truncates the
 * effective address before the base is added, as the CPU does.
 *
 * Refused (an internal error naming the instruction, never a wrong access): FS/GS overrides on
 * implicit memory operands (MOVS, CMPS, LODS, OUTS, XLAT), on vector-indexed (VSIB) operands, on
 * indirect JMP/CALL, and POP to an RSP-based FS/GS operand. None occurs in compiled code we know.
 */
#include "dbt_emit.h"

/* The 64-bit GPR number (ModRM order) of a Zydis register, or -1 if not a GPR. */
static int gpr_number(ZydisRegister reg)
{
    if (reg == ZYDIS_REGISTER_NONE)
        return -1;
    ZydisRegister r64 = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, reg);
    if (r64 >= ZYDIS_REGISTER_RAX && r64 <= ZYDIS_REGISTER_R15)
        return (int)(r64 - ZYDIS_REGISTER_RAX);
    return -1;
}

static bool encode(struct emitter *e, const ZydisEncoderRequest *r)
{
    uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];
    ZyanUSize len = sizeof(buf);
    if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(r, buf, &len)))
        return false;
    emit_bytes(e, buf, len);
    return true;
}

static void request(ZydisEncoderRequest *r, ZydisMnemonic m)
{
    memset(r, 0, sizeof(*r));
    r->machine_mode = ZYDIS_MACHINE_MODE_LONG_64;
    r->mnemonic = m;
    r->operand_count = 2;
}

/* lea dst, [base + index*scale + disp] (the encoder wants the memory operand sized like dst) */
static bool emit_lea(struct emitter *e, ZydisRegister dst, ZydisRegister base, ZydisRegister index,
                     uint8_t scale, int64_t disp)
{
    ZydisEncoderRequest r;
    request(&r, ZYDIS_MNEMONIC_LEA);
    r.operands[0].type = ZYDIS_OPERAND_TYPE_REGISTER;
    r.operands[0].reg.value = dst;
    r.operands[1].type = ZYDIS_OPERAND_TYPE_MEMORY;
    r.operands[1].mem.base = base;
    r.operands[1].mem.index = index;
    r.operands[1].mem.scale = index == ZYDIS_REGISTER_NONE ? 0 : scale;
    r.operands[1].mem.displacement = disp;
    r.operands[1].mem.size = (ZyanU16)(ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, dst) / 8);
    return encode(e, &r);
}

static bool emit_mov_imm(struct emitter *e, ZydisRegister dst, uint64_t imm)
{
    ZydisEncoderRequest r;
    request(&r, ZYDIS_MNEMONIC_MOV);
    r.operands[0].type = ZYDIS_OPERAND_TYPE_REGISTER;
    r.operands[0].reg.value = dst;
    r.operands[1].type = ZYDIS_OPERAND_TYPE_IMMEDIATE;
    r.operands[1].imm.u = imm;
    return encode(e, &r);
}

static bool implicit_string_operand(ZydisMnemonic m)
{
    switch (m) {
    case ZYDIS_MNEMONIC_MOVSB:
    case ZYDIS_MNEMONIC_MOVSW:
    case ZYDIS_MNEMONIC_MOVSD:
    case ZYDIS_MNEMONIC_MOVSQ:
    case ZYDIS_MNEMONIC_CMPSB:
    case ZYDIS_MNEMONIC_CMPSW:
    case ZYDIS_MNEMONIC_CMPSD:
    case ZYDIS_MNEMONIC_CMPSQ:
    case ZYDIS_MNEMONIC_LODSB:
    case ZYDIS_MNEMONIC_LODSW:
    case ZYDIS_MNEMONIC_LODSD:
    case ZYDIS_MNEMONIC_LODSQ:
    case ZYDIS_MNEMONIC_OUTSB:
    case ZYDIS_MNEMONIC_OUTSW:
    case ZYDIS_MNEMONIC_OUTSD:
    case ZYDIS_MNEMONIC_XLAT:
        return true;
    default:
        return false;
    }
}

enum dbt_segment_result dbt_emit_segment_access(struct emitter *e,
                                                const struct x86_decoded_insn *in)
{
    if (!(in->info.attributes & (ZYDIS_ATTRIB_HAS_SEGMENT_FS | ZYDIS_ATTRIB_HAS_SEGMENT_GS)))
        return DBT_SEGMENT_NONE;
    /* Which operand does the override apply to, and which GPRs does the instruction use? */
    int mem = -1;
    bool used[16] = {false};
    used[4] = true; /* never RSP */
    for (unsigned i = 0; i < in->info.operand_count; i++) {
        const ZydisDecodedOperand *op = &in->operands[i];
        if (op->type == ZYDIS_OPERAND_TYPE_REGISTER) {
            int n = gpr_number(op->reg.value);
            if (n >= 0)
                used[n] = true;
        } else if (op->type == ZYDIS_OPERAND_TYPE_MEMORY) {
            int b = gpr_number(op->mem.base), x = gpr_number(op->mem.index);
            if (b >= 0)
                used[b] = true;
            if (x >= 0)
                used[x] = true;
            bool seg = op->mem.segment == ZYDIS_REGISTER_FS || op->mem.segment == ZYDIS_REGISTER_GS;
            if (seg && op->mem.type == ZYDIS_MEMOP_TYPE_MEM) {
                if (op->visibility != ZYDIS_OPERAND_VISIBILITY_EXPLICIT || mem >= 0)
                    return DBT_SEGMENT_REFUSE;
                mem = (int)i;
            } else if (seg && op->mem.type == ZYDIS_MEMOP_TYPE_VSIB) {
                return DBT_SEGMENT_REFUSE;
            }
        }
    }
    if (mem < 0) /* LEA, NOP r/m, a prefix on an instruction without memory operand */
        return DBT_SEGMENT_NONE;
    if (implicit_string_operand(in->info.mnemonic) || mem >= in->info.operand_count_visible)
        return DBT_SEGMENT_REFUSE;
    const ZydisDecodedOperand *op = &in->operands[mem];
    if (in->info.mnemonic == ZYDIS_MNEMONIC_POP && op->mem.base == ZYDIS_REGISTER_RSP)
        return DBT_SEGMENT_REFUSE; /* its address is computed after RSP moves */
    int r1 = -1, r2 = -1;
    static const int order[] = {8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 5, 6, 7};
    for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]) && r2 < 0; i++)
        if (!used[order[i]]) {
            if (r1 < 0)
                r1 = order[i];
            else
                r2 = order[i];
        }
    if (r2 < 0)
        return DBT_SEGMENT_REFUSE;
    ZydisRegister R1 = (ZydisRegister)(ZYDIS_REGISTER_RAX + r1);
    ZydisRegister R2 = (ZydisRegister)(ZYDIS_REGISTER_RAX + r2);
    unsigned seg = op->mem.segment == ZYDIS_REGISTER_FS ? 0 : 1;

    /* The instruction itself, with [R1] for its memory operand and no segment override. */
    ZydisEncoderRequest r;
    if (!ZYAN_SUCCESS(ZydisEncoderDecodedInstructionToEncoderRequest(
            &in->info, in->operands, in->info.operand_count_visible, &r)))
        return DBT_SEGMENT_REFUSE;
    r.prefixes &=
        ~(ZydisInstructionAttributes)(ZYDIS_ATTRIB_HAS_SEGMENT_FS | ZYDIS_ATTRIB_HAS_SEGMENT_GS |
                                      ZYDIS_ATTRIB_HAS_SEGMENT);
    r.address_size_hint = ZYDIS_ADDRESS_SIZE_HINT_NONE;
    r.operands[mem].mem.base = R1;
    r.operands[mem].mem.index = ZYDIS_REGISTER_NONE;
    r.operands[mem].mem.scale = 0;
    r.operands[mem].mem.displacement = 0;
    uint8_t insn[ZYDIS_MAX_INSTRUCTION_LENGTH];
    ZyanUSize insn_len = sizeof(insn);
    if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstruction(&r, insn, &insn_len)))
        return DBT_SEGMENT_REFUSE;

    /* R1 = effective address (truncated to the address size) + segment base */
    uint32_t start = e->pos;
    emit_ctx_move(e, (unsigned)r1, DBT_CTX_SEG_SAVE, true);
    emit_ctx_move(e, (unsigned)r2, DBT_CTX_SEG_SAVE2, true);
    bool addr32 = in->info.address_width == 32;
    uint64_t mask = addr32 ? 0xFFFFFFFFULL : ~0ULL;
    bool ok;
    if (op->mem.base == ZYDIS_REGISTER_RIP || op->mem.base == ZYDIS_REGISTER_EIP) {
        ok = emit_mov_imm(e, R1, (in->rip + in->length + (uint64_t)op->mem.disp.value) & mask);
    } else if (op->mem.base == ZYDIS_REGISTER_NONE && op->mem.index == ZYDIS_REGISTER_NONE) {
        ok = emit_mov_imm(e, R1, (uint64_t)op->mem.disp.value & mask);
    } else {
        ZydisRegister dst = addr32 ? (ZydisRegister)(ZYDIS_REGISTER_EAX + r1) : R1;
        ok = emit_lea(e, dst, op->mem.base, op->mem.index, op->mem.scale, op->mem.disp.value);
    }
    emit_ctx_move(e, (unsigned)r2, DBT_CTX_SEG_BASE(seg), false);
    ok = ok && emit_lea(e, R1, R1, R2, 1, 0);
    emit_ctx_move(e, (unsigned)r2, DBT_CTX_SEG_SAVE2, false);
    if (!ok) {
        e->pos = start;
        return DBT_SEGMENT_REFUSE;
    }
    emit_bytes(e, insn, insn_len);
    emit_ctx_move(e, (unsigned)r1, DBT_CTX_SEG_SAVE, false);
    /* a fault in the instruction: R1 is in seg_save (dbt_signal.c) */
    struct dbt_map_entry *m = &e->c->map[e->c->map_count - 1];
    m->guest_rip_low |= DBT_MAP_SEG_FIXUP | ((uint32_t)r1 << DBT_MAP_SEG_REG_SHIFT);
    return DBT_SEGMENT_DONE;
}
