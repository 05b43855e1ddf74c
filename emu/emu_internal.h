/* emu_internal.h - helpers shared by the emulation core's files (not a public interface). */
#ifndef VMLAB_EMU_INTERNAL_H
#define VMLAB_EMU_INTERNAL_H

#include <asm/processor-flags.h>
#include <stdbool.h>
#include <stdint.h>

#include "emu.h"

/* Exception vectors (Intel SDM vol. 3A, table 6-1). */
enum {
    EMU_DE = 0,
    EMU_DB = 1,
    EMU_BP = 3,
    EMU_UD = 6,
    EMU_NM = 7,
    EMU_DF = 8,
    EMU_TS = 10,
    EMU_NP = 11,
    EMU_SS = 12,
    EMU_GP = 13,
    EMU_PF = 14,
    EMU_AC = 17,
};

/* Descriptor fields (SDM vol. 3A 3.4.5, figure 3-8). */
#define DESC_TYPE(lo) ((unsigned)(((lo) >> 40) & 0xF))
#define DESC_S(lo) ((unsigned)(((lo) >> 44) & 1))
#define DESC_DPL(lo) ((unsigned)(((lo) >> 45) & 3))
#define DESC_P(lo) ((unsigned)(((lo) >> 47) & 1))
#define DESC_L(lo) ((unsigned)(((lo) >> 53) & 1))
#define DESC_G(lo) ((unsigned)(((lo) >> 55) & 1))
#define DESC_CODE(lo) (DESC_S(lo) && (DESC_TYPE(lo) & 0x8))

static inline void emu_raise(struct emu_result *out, uint8_t vector, bool has_error, uint32_t err)
{
    out->status = EMU_EXCEPTION;
    out->vector = vector;
    out->has_error_code = has_error;
    out->error_code = err;
}

/* RFLAGS bits POPF/IRET/SYSRET may change at CPL 0 (SDM vol. 2B POPF, table 4-15). */
#define RFLAGS_WRITABLE                                                                            \
    (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF |               \
     X86_EFLAGS_TF | X86_EFLAGS_IF | X86_EFLAGS_DF | X86_EFLAGS_OF | X86_EFLAGS_IOPL |             \
     X86_EFLAGS_NT | X86_EFLAGS_AC | X86_EFLAGS_ID)

/* IA32_EFER bits (SDM vol. 4, table 2-2; vol. 3A 2.2.1). */
#define EFER_SCE (1ULL << 0)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define EFER_NXE (1ULL << 11)

/* One handler per sensitive class (emu.c's table): emulate the decoded instruction at
 * ctx->state->rip, fill `out` (out->cls is already set). The handlers of each family of
 * instructions live in their own file and are declared in emu_families.h. */
typedef void (*emu_handler)(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                            struct emu_result *out);

/* The instruction completed: RIP past it, status EMU_OK. */
static inline void emu_advance(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                               struct emu_result *out)
{
    ctx->state->rip += insn->length;
    out->status = EMU_OK;
}

/* What changed, for `vmlab trace`: field (a static string) went from old to new. */
static inline void emu_note(struct emu_result *out, const char *field, uint64_t old, uint64_t new)
{
    out->field = field;
    out->old_value = old;
    out->new_value = new;
}

static inline void emu_set_flag(struct vcpu_state *s, uint64_t flag, bool on)
{
    s->rflags = on ? s->rflags | flag : s->rflags & ~flag;
}

static inline bool emu_canonical(uint64_t a)
{
    return (uint64_t)(((int64_t)(a << 16)) >> 16) == a;
}

/* Linear address of a memory operand (segment base of FS/GS included). */
bool emu_mem_address(const struct vcpu_state *s, const struct x86_decoded_insn *insn,
                     const ZydisDecodedOperand *op, uint64_t *addr);
/* Guest memory access by linear address (n <= 4096), through the guest's page tables; on
 * failure raise #PF (CR2 in out->cr2), or #GP / #SS for a non-canonical address, in out and
 * return false. Writes are reported to ctx->mmu. */
bool emu_read(struct emu_ctx *ctx, uint64_t addr, void *dst, unsigned n, struct emu_result *out);
bool emu_write(struct emu_ctx *ctx, uint64_t addr, const void *src, unsigned n,
               struct emu_result *out);
/* The same with enum mmu_access flags (MMU_IMPLICIT for descriptor tables and delivery
 * frames) and EMU_ACCESS_STACK (a non-canonical stack address raises #SS). */
#define EMU_ACCESS_STACK (1u << 8)
bool emu_read_as(struct emu_ctx *ctx, uint64_t addr, void *dst, unsigned n, unsigned access,
                 struct emu_result *out);
bool emu_write_as(struct emu_ctx *ctx, uint64_t addr, const void *src, unsigned n, unsigned access,
                  struct emu_result *out);
/* Tell the MMU hooks (if any) which cached translations an instruction invalidated. */
static inline void emu_tlb_flush(struct emu_ctx *ctx, enum emu_tlb_flush kind, uint64_t gla)
{
    if (ctx->mmu)
        ctx->mmu->tlb_flush(ctx->mmu->arg, kind, gla);
}
/* Operand value / assignment (register, memory, immediate). */
bool emu_operand_read(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, unsigned index,
                      uint64_t *value, struct emu_result *out);
bool emu_operand_write(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, unsigned index,
                       uint64_t value, struct emu_result *out);
bool emu_push(struct emu_ctx *ctx, uint64_t value, unsigned size, struct emu_result *out);
bool emu_pop(struct emu_ctx *ctx, uint64_t *value, unsigned size, struct emu_result *out);
/* SLDT, STR, SMSW, MOV from Sreg: store `value` to operand 0 (a register: zero-extended to
 * the operand size; memory: 16 bits), note it as `name`, complete the instruction. */
static inline void emu_store_result(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                                    struct emu_result *out, uint64_t value, const char *name)
{
    if (!emu_operand_write(ctx, insn, 0, value, out))
        return;
    emu_note(out, name, value, value);
    emu_advance(ctx, insn, out);
}
/* INT n / INT3 (emu_deliver.c): deliver `vector` with the RIP after the instruction (`length`
 * bytes) in the frame; a fault during the delivery is a fault of the instruction, reported
 * with RIP still at it (SDM vol. 2A INT n: the checks of the gate belong to the instruction). */
enum emu_status emu_deliver_software_interrupt(struct emu_ctx *ctx, uint8_t vector, unsigned length,
                                               struct emu_result *out);
/* Read the 8-byte descriptor a selector names (GDT or LDT). false if the selector is null or
 * beyond the table limit. hi receives the next 8 bytes for system descriptors (may be NULL). */
bool emu_descriptor(struct emu_ctx *ctx, uint16_t selector, uint64_t *lo, uint64_t *hi);
/* Fill a segment register's hidden part from a descriptor (VMCS access-rights layout). */
void emu_segment_load(struct x86_segment *seg, uint16_t selector, uint64_t lo, uint64_t hi);
/* Load CS for a far transfer / IRET at CPL 0: checks per SDM, raises in out on failure. */
bool emu_load_code_segment(struct emu_ctx *ctx, uint16_t selector, struct emu_result *out);
/* Load a data segment register (DS, ES, FS, GS, SS) like MOV Sreg. */
bool emu_load_data_segment(struct emu_ctx *ctx, ZydisRegister sreg, uint16_t selector,
                           struct emu_result *out);

#endif
