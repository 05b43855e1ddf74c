/* x86_decode.h - the one Zydis 4 decoder wrapper used by trap_emulate, dbt and classify.
 *
 * Caller-owned structs, no allocation: safe to call from a signal handler.
 */
#ifndef VMLAB_X86_DECODE_H
#define VMLAB_X86_DECODE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <Zydis/Zydis.h>

#include "emu_class.h"

struct x86_decoded_insn {
    ZydisDecodedInstruction info;
    ZydisDecodedOperand operands[ZYDIS_MAX_OPERAND_COUNT];
    uint64_t rip;
    uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH];
    uint8_t length;
};

struct x86_decoder {
    ZydisDecoder zydis; /* 64-bit long mode, stack width 64 */
};

/* Always succeeds for long mode. */
void x86_decoder_init(struct x86_decoder *dec);

/* Decode one instruction from code[0..avail) located at guest address rip.
 * 0, or -EILSEQ (undecodable bytes: the guest gets #UD), -ENODATA (avail too short). */
int x86_decode(const struct x86_decoder *dec, const void *code, size_t avail, uint64_t rip,
               struct x86_decoded_insn *out);

/* Two-step decoding, for the translator: first the instruction alone (length, mnemonic,
 * attributes and the raw prefix/ModRM/SIB/displacement/immediate fields: all that copying it
 * needs), about two thirds of a full decode; then, only when they are needed, its operands
 * (ZydisDecoderDecodeOperands with the context the first step kept). Until then
 * out->operands is not filled and x86_classify must not be called unless
 * x86_classify_needs_operands() is false. Same return values as x86_decode. */
int x86_decode_instruction(const struct x86_decoder *dec, const void *code, size_t avail,
                           uint64_t rip, struct x86_decoded_insn *out, ZydisDecoderContext *ctx);
int x86_decode_operands(const struct x86_decoder *dec, const ZydisDecoderContext *ctx,
                        struct x86_decoded_insn *out);
/* Whether x86_classify looks at the operands of this instruction (MOV, PUSH, POP). */
bool x86_classify_needs_operands(const struct x86_decoded_insn *insn);

/* Which sensitive class an instruction belongs to (EMU_CLASS_NONE when innocuous). Looks at the
 * mnemonic and, where needed, the operands (MOV to/from a segment or control register, far
 * forms of CALL/JMP/RET, PUSH/POP of FS/GS). */
enum emu_class x86_classify(const struct x86_decoded_insn *insn);

/* Intel-syntax text of the instruction (Zydis formatter), for messages. */
void x86_format(const struct x86_decoded_insn *insn, char *buf, size_t size);

#endif
