/* x86_decode.c - the Zydis 4 decoder wrapper and the sensitive-instruction classifier. */
#include "x86_decode.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void x86_decoder_init(struct x86_decoder *dec)
{
    ZydisDecoderInit(&dec->zydis, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
}

int x86_decode(const struct x86_decoder *dec, const void *code, size_t avail, uint64_t rip,
               struct x86_decoded_insn *out)
{
    ZydisDecoderContext ctx;
    int rc = x86_decode_instruction(dec, code, avail, rip, out, &ctx);
    return rc < 0 ? rc : x86_decode_operands(dec, &ctx, out);
}

int x86_decode_instruction(const struct x86_decoder *dec, const void *code, size_t avail,
                           uint64_t rip, struct x86_decoded_insn *out, ZydisDecoderContext *ctx)
{
    ZyanStatus st = ZydisDecoderDecodeInstruction(&dec->zydis, ctx, code, avail, &out->info);
    if (st == ZYDIS_STATUS_NO_MORE_DATA)
        return -ENODATA;
    if (!ZYAN_SUCCESS(st))
        return -EILSEQ;
    out->rip = rip;
    out->length = out->info.length;
    memcpy(out->bytes, code, out->length);
    return 0;
}

int x86_decode_operands(const struct x86_decoder *dec, const ZydisDecoderContext *ctx,
                        struct x86_decoded_insn *out)
{
    unsigned n = out->info.operand_count;
    ZyanStatus st = ZydisDecoderDecodeOperands(&dec->zydis, ctx, &out->info, out->operands, n);
    /* the unused slots read as empty, as ZydisDecoderDecodeFull leaves them */
    memset(&out->operands[n], 0, (ZYDIS_MAX_OPERAND_COUNT - n) * sizeof(out->operands[0]));
    return ZYAN_SUCCESS(st) ? 0 : -EILSEQ;
}

bool x86_classify_needs_operands(const struct x86_decoded_insn *insn)
{
    switch (insn->info.mnemonic) {
    case ZYDIS_MNEMONIC_MOV:
    case ZYDIS_MNEMONIC_PUSH:
    case ZYDIS_MNEMONIC_POP:
        return true;
    default:
        return false;
    }
}

static ZydisRegisterClass reg_class(const ZydisDecodedOperand *op)
{
    return op->type == ZYDIS_OPERAND_TYPE_REGISTER ? ZydisRegisterGetClass(op->reg.value)
                                                   : ZYDIS_REGCLASS_INVALID;
}

static enum emu_class classify_mov(const struct x86_decoded_insn *insn)
{
    for (unsigned i = 0; i < insn->info.operand_count_visible; i++) {
        ZydisRegisterClass c = reg_class(&insn->operands[i]);
        if (c == ZYDIS_REGCLASS_CONTROL)
            return EMU_CLASS_MOV_CR;
        if (c == ZYDIS_REGCLASS_DEBUG)
            return EMU_CLASS_MOV_DR;
        if (c == ZYDIS_REGCLASS_SEGMENT)
            return i == 0 ? EMU_CLASS_MOV_TO_SEG : EMU_CLASS_MOV_FROM_SEG;
    }
    return EMU_CLASS_NONE;
}

enum emu_class x86_classify(const struct x86_decoded_insn *insn)
{
    bool far = insn->info.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR;
    switch (insn->info.mnemonic) {
    case ZYDIS_MNEMONIC_CLI:
        return EMU_CLASS_CLI;
    case ZYDIS_MNEMONIC_STI:
        return EMU_CLASS_STI;
    case ZYDIS_MNEMONIC_HLT:
        return EMU_CLASS_HLT;
    case ZYDIS_MNEMONIC_IN:
        return EMU_CLASS_IN;
    case ZYDIS_MNEMONIC_OUT:
        return EMU_CLASS_OUT;
    case ZYDIS_MNEMONIC_INSB:
    case ZYDIS_MNEMONIC_INSW:
    case ZYDIS_MNEMONIC_INSD:
        return EMU_CLASS_INS;
    case ZYDIS_MNEMONIC_OUTSB:
    case ZYDIS_MNEMONIC_OUTSW:
    case ZYDIS_MNEMONIC_OUTSD:
        return EMU_CLASS_OUTS;
    case ZYDIS_MNEMONIC_MOV:
        return classify_mov(insn);
    case ZYDIS_MNEMONIC_LFS: /* load a far pointer: a segment load like MOV Sreg */
    case ZYDIS_MNEMONIC_LGS:
    case ZYDIS_MNEMONIC_LSS:
        return EMU_CLASS_MOV_TO_SEG;
    case ZYDIS_MNEMONIC_LGDT:
        return EMU_CLASS_LGDT;
    case ZYDIS_MNEMONIC_LIDT:
        return EMU_CLASS_LIDT;
    case ZYDIS_MNEMONIC_LLDT:
        return EMU_CLASS_LLDT;
    case ZYDIS_MNEMONIC_LTR:
        return EMU_CLASS_LTR;
    case ZYDIS_MNEMONIC_LMSW:
        return EMU_CLASS_LMSW;
    case ZYDIS_MNEMONIC_CLTS:
        return EMU_CLASS_CLTS;
    case ZYDIS_MNEMONIC_RDMSR:
        return EMU_CLASS_RDMSR;
    case ZYDIS_MNEMONIC_WRMSR:
        return EMU_CLASS_WRMSR;
    case ZYDIS_MNEMONIC_INVLPG:
        return EMU_CLASS_INVLPG;
    case ZYDIS_MNEMONIC_INVPCID:
        return EMU_CLASS_INVPCID;
    case ZYDIS_MNEMONIC_WBINVD:
        return EMU_CLASS_WBINVD;
    case ZYDIS_MNEMONIC_INVD:
        return EMU_CLASS_INVD;
    case ZYDIS_MNEMONIC_RDPMC:
        return EMU_CLASS_RDPMC;
    case ZYDIS_MNEMONIC_SWAPGS:
        return EMU_CLASS_SWAPGS;
    case ZYDIS_MNEMONIC_XSETBV:
        return EMU_CLASS_XSETBV;
    case ZYDIS_MNEMONIC_MONITOR:
    case ZYDIS_MNEMONIC_MWAIT:
        return EMU_CLASS_MONITOR_MWAIT;
    case ZYDIS_MNEMONIC_SYSRET:
        return EMU_CLASS_SYSRET;
    case ZYDIS_MNEMONIC_SYSEXIT:
        return EMU_CLASS_SYSEXIT;
    case ZYDIS_MNEMONIC_IRET:
    case ZYDIS_MNEMONIC_IRETD:
    case ZYDIS_MNEMONIC_IRETQ:
        return EMU_CLASS_IRET;
    case ZYDIS_MNEMONIC_INT:
    case ZYDIS_MNEMONIC_INTO:
    case ZYDIS_MNEMONIC_INT1:
        return EMU_CLASS_INT;
    case ZYDIS_MNEMONIC_INT3:
        return EMU_CLASS_INT3;
    case ZYDIS_MNEMONIC_SYSCALL:
        return EMU_CLASS_SYSCALL;
    case ZYDIS_MNEMONIC_SYSENTER:
        return EMU_CLASS_SYSENTER;
    case ZYDIS_MNEMONIC_CALL:
        return far ? EMU_CLASS_FAR_CALL : EMU_CLASS_NONE;
    case ZYDIS_MNEMONIC_JMP:
        return far ? EMU_CLASS_FAR_JMP : EMU_CLASS_NONE;
    case ZYDIS_MNEMONIC_RET:
        return far ? EMU_CLASS_FAR_RET : EMU_CLASS_NONE;
    case ZYDIS_MNEMONIC_SGDT:
        return EMU_CLASS_SGDT;
    case ZYDIS_MNEMONIC_SIDT:
        return EMU_CLASS_SIDT;
    case ZYDIS_MNEMONIC_SLDT:
        return EMU_CLASS_SLDT;
    case ZYDIS_MNEMONIC_STR:
        return EMU_CLASS_STR;
    case ZYDIS_MNEMONIC_SMSW:
        return EMU_CLASS_SMSW;
    case ZYDIS_MNEMONIC_PUSHF:
    case ZYDIS_MNEMONIC_PUSHFD:
    case ZYDIS_MNEMONIC_PUSHFQ:
        return EMU_CLASS_PUSHF;
    case ZYDIS_MNEMONIC_POPF:
    case ZYDIS_MNEMONIC_POPFD:
    case ZYDIS_MNEMONIC_POPFQ:
        return EMU_CLASS_POPF;
    case ZYDIS_MNEMONIC_LAR:
        return EMU_CLASS_LAR;
    case ZYDIS_MNEMONIC_LSL:
        return EMU_CLASS_LSL;
    case ZYDIS_MNEMONIC_VERR:
        return EMU_CLASS_VERR;
    case ZYDIS_MNEMONIC_VERW:
        return EMU_CLASS_VERW;
    case ZYDIS_MNEMONIC_PUSH:
        return reg_class(&insn->operands[0]) == ZYDIS_REGCLASS_SEGMENT ? EMU_CLASS_PUSH_SEG
                                                                       : EMU_CLASS_NONE;
    case ZYDIS_MNEMONIC_POP:
        return reg_class(&insn->operands[0]) == ZYDIS_REGCLASS_SEGMENT ? EMU_CLASS_POP_SEG
                                                                       : EMU_CLASS_NONE;
    case ZYDIS_MNEMONIC_RDFSBASE:
    case ZYDIS_MNEMONIC_WRFSBASE:
    case ZYDIS_MNEMONIC_RDGSBASE:
    case ZYDIS_MNEMONIC_WRGSBASE:
        return EMU_CLASS_FSGSBASE;
    case ZYDIS_MNEMONIC_CPUID:
        return EMU_CLASS_CPUID;
    case ZYDIS_MNEMONIC_RDTSC:
        return EMU_CLASS_RDTSC;
    case ZYDIS_MNEMONIC_RDTSCP:
        return EMU_CLASS_RDTSCP;
    default:
        return EMU_CLASS_NONE;
    }
}

void x86_format(const struct x86_decoded_insn *insn, char *buf, size_t size)
{
    ZydisFormatter f;
    if (!ZYAN_SUCCESS(ZydisFormatterInit(&f, ZYDIS_FORMATTER_STYLE_INTEL)) ||
        !ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&f, &insn->info, insn->operands,
                                                      insn->info.operand_count_visible, buf, size,
                                                      insn->rip, NULL)))
        snprintf(buf, size, "(unformattable)");
}
