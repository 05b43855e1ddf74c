/* dbt_translate.c - one guest basic block into the code cache.
 *
 * The translator decodes with Zydis (x86_decode, the wrapper shared with trap_emulate),
 * classifies with the project's Popek-Goldberg table (x86_classify) and writes:
 *
 *   innocuous                   the guest bytes, verbatim (no re-encoding: B stays close to
 *                               the cost of decoding). A RIP-relative operand keeps its
 *                               encoding; only its disp32 moves by (guest RIP - host RIP),
 *                               guest RAM being within 2 GiB of the cache.
 *   CLI STI PUSHFQ POPFQ        inline sequences on the virtual flags (dbt_inline.c)
 *   any other sensitive         a callout: `mov dword [callout_id], n; jmp callout_stub`,
 *                               with the instruction decoded now and kept in callout record
 *                               n for the emulation core (dbt_callout.c). Instructions that
 *                               transfer control (INT, IRET, far branches, SYSCALL, HLT) and
 *                               port I/O (an exit to the VMM: ends_block) end the block; the
 *                               others continue it.
 *   JMP/CALL rel, Jcc, LOOP,    the block ends in direct exit stubs naming the guest target;
 *   JRCXZ                       the dispatcher chains them to the target block later.
 *   JMP/CALL r/m, RET           the target goes to ctx.next_rip and the inline lookup
 *                               (dbt_lookup.c) continues there.
 *   a store that keeps faulting a store callout: the emulation core performs it
 *   on a guest page table      (adaptive translation, dbt_paging.c)
 *
 * Guest code is read through the guest's page tables: the pages a block's addresses map to in
 * the current address space (at most two), found with the shadow MMU. Each guest
 * instruction's host offset is recorded, so a fault, a kick or an SMC write in translated
 * code maps back to the exact guest instruction. Guest pages a block was read from are
 * write-protected through the shadow MMU, so that writing to them (self-modifying code) is
 * noticed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>

#include "dbt_emit.h"
#include "dbt_inline.h"
#include "vmm/guest_layout.h"

static inline uint64_t cycles(void)
{
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static bool rip_relative(const struct x86_decoded_insn *in)
{
    return in->info.attributes & ZYDIS_ATTRIB_HAS_MODRM && in->info.raw.modrm.mod == 0 &&
           in->info.raw.modrm.rm == 5 && in->info.raw.disp.size == 32 &&
           !(in->info.attributes & ZYDIS_ATTRIB_HAS_SIB);
}

/* The bytes of `in` as `mov rcx, r/m64` with the same memory operand: the legacy prefixes
 * that keep their meaning (address size; CS/DS/ES/SS overrides, no-ops in 64-bit mode), then
 * REX.W with the operand's REX.X/B, 8B /1 and everything from the ModRM byte on. `*disp_at`:
 * where the displacement moved. 0 if the instruction has another prefix. */
static unsigned load_rcx_form(const struct x86_decoded_insn *in, uint8_t *b, unsigned *disp_at)
{
    unsigned m = in->info.raw.modrm.offset, n = 0, rex = 0;
    if (m == 0 || in->bytes[m - 1] != 0xff)
        return 0; /* FF /2 or FF /4 only */
    for (unsigned i = 0; i + 1 < m; i++) {
        uint8_t p = in->bytes[i];
        if ((p & 0xf0) == 0x40 && i + 2 == m)
            rex = p; /* REX comes last, right before the opcode */
        else if (p == 0x67 || p == 0x2e || p == 0x3e || p == 0x26 || p == 0x36)
            b[n++] = p;
        else
            return 0;
    }
    b[n++] = (uint8_t)(0x48 | (rex & 3)); /* REX.W, X and B kept, R clear: RCX */
    b[n++] = 0x8b;
    unsigned rest = in->length - m; /* ModRM, SIB, displacement */
    memcpy(b + n, in->bytes + m, rest);
    b[n] = (uint8_t)((b[n] & 0xc7) | (1 << 3)); /* ModRM.reg = 1: RCX */
    *disp_at = in->info.raw.disp.offset - m + n;
    return n + rest;
}

/* Copy the instruction (with `modrm_reg` >= 0: that ModRM.reg instead; DBT_RELOCATE_LOAD_RCX:
 * as a MOV of its memory operand into RCX) and, if RIP-relative, move its displacement so it
 * still addresses the same guest byte from the cache. */
static bool emit_relocated(struct emitter *e, const struct x86_decoded_insn *in, int modrm_reg)
{
    uint8_t b[ZYDIS_MAX_INSTRUCTION_LENGTH + 1];
    unsigned length = in->length, disp_at = in->info.raw.disp.offset;
    if (modrm_reg == DBT_RELOCATE_LOAD_RCX) {
        length = load_rcx_form(in, b, &disp_at);
        if (!length)
            return false;
    } else {
        memcpy(b, in->bytes, in->length);
    }
    if (modrm_reg >= 0) {
        unsigned m = in->info.raw.modrm.offset;
        b[m] = (uint8_t)((b[m] & 0xC7) | (modrm_reg << 3));
    }
    if (rip_relative(in)) {
        uint64_t host_next = (uint64_t)(uintptr_t)e->c->rx + e->pos + length;
        int64_t disp = in->info.raw.disp.value + (int64_t)(in->rip + in->length - host_next);
        if (disp != (int32_t)disp)
            return false; /* cannot happen for targets in the guest window */
        int32_t d32 = (int32_t)disp;
        memcpy(b + disp_at, &d32, 4);
    }
    emit_bytes(e, b, length);
    return true;
}

/* Target of a relative JMP/CALL/Jcc/LOOP/JRCXZ, from the raw immediate (the translator does
 * not decode the operands of innocuous instructions; SDM vol. 2A JMP: the displacement is
 * relative to the next instruction). */
static bool relative_branch(const struct x86_decoded_insn *in)
{
    return in->info.raw.imm[0].is_relative;
}
static uint64_t branch_target(const struct x86_decoded_insn *in)
{
    return in->rip + in->length + (uint64_t)in->info.raw.imm[0].value.s;
}

/* After a CALL with the return-address cache: its return point (dbt_lookup.c), where the
 * block goes on. */
static void emit_return_point(struct emitter *e, const struct x86_decoded_insn *in)
{
    if (e->ret_count == DBT_MAX_BLOCK_RETURN_POINTS) {
        e->overflow = true;
        return;
    }
    uint64_t ret_rip = in->rip + in->length;
    struct dbt_return_point *rp = &e->rets[e->ret_count++];
    rp->guest_rip_low = (uint32_t)(ret_rip - GUEST_RAM_BASE);
    rp->host = dbt_emit_return_point(e, ret_rip);
}

/* LOOPcc/JRCXZ copied for the host, without an operand-size prefix: Zydis decodes them (and
 * dbt computes their target) as Intel does, where 66H does not change a near branch in 64-bit
 * mode; AMD truncates the new RIP to 16 bits instead (APM vol. 3, LOOP), so on an AMD host the
 * copied prefix sent the taken branch to a host address below 64 KiB (chaos test). */
static void emit_short_branch(struct emitter *e, const struct x86_decoded_insn *in)
{
    uint8_t b[ZYDIS_MAX_INSTRUCTION_LENGTH];
    size_t n = 0;
    for (unsigned i = 0; i < in->length; i++)
        if (!(i < in->info.raw.prefix_count && in->bytes[i] == 0x66))
            b[n++] = in->bytes[i];
    emit_bytes(e, b, n);
}

/* Does the instruction read or write the x87 unit (x87 and MMX instructions share it; the
 * FXSAVE and XSAVE families save and load it)? */
static bool uses_x87(const struct x86_decoded_insn *in)
{
    if (in->info.meta.isa_ext == ZYDIS_ISA_EXT_X87 || in->info.meta.isa_ext == ZYDIS_ISA_EXT_MMX ||
        in->info.meta.isa_ext == ZYDIS_ISA_EXT_AMD3DNOW)
        return true;
    switch (in->info.mnemonic) {
    case ZYDIS_MNEMONIC_FXSAVE:
    case ZYDIS_MNEMONIC_FXSAVE64:
    case ZYDIS_MNEMONIC_FXRSTOR:
    case ZYDIS_MNEMONIC_FXRSTOR64:
    case ZYDIS_MNEMONIC_XSAVE:
    case ZYDIS_MNEMONIC_XSAVE64:
    case ZYDIS_MNEMONIC_XSAVEC:
    case ZYDIS_MNEMONIC_XSAVEC64:
    case ZYDIS_MNEMONIC_XSAVEOPT:
    case ZYDIS_MNEMONIC_XSAVEOPT64:
    case ZYDIS_MNEMONIC_XRSTOR:
    case ZYDIS_MNEMONIC_XRSTOR64:
        return true;
    default:
        return false;
    }
}

/* Instructions that end the block: control transfers, and port I/O. An IN/OUT/INS/OUTS
 * that reaches a port leaves for the VMM (EMU_EXIT_IO), and the next vcpu_run comes back
 * through the dispatcher, which looks the next instruction up as a block start. Code
 * translated after the I/O in the same block would never run from there - it used to, as
 * a second, overlapping block translated at the next instruction: every stretch of code
 * between two OUTs was translated once more for each OUT before it. */
static bool ends_block(enum emu_class cls)
{
    switch (cls) {
    case EMU_CLASS_IN:
    case EMU_CLASS_OUT:
    case EMU_CLASS_INS:
    case EMU_CLASS_OUTS:
    case EMU_CLASS_HLT:
    case EMU_CLASS_IRET:
    case EMU_CLASS_INT:
    case EMU_CLASS_INT3:
    case EMU_CLASS_SYSCALL:
    case EMU_CLASS_SYSENTER:
    case EMU_CLASS_SYSRET:
    case EMU_CLASS_SYSEXIT:
    case EMU_CLASS_FAR_CALL:
    case EMU_CLASS_FAR_JMP:
    case EMU_CLASS_FAR_RET:
        return true;
    default:
        return false;
    }
}

static void emit_callout(struct dbt_vcpu *v, struct emitter *e, const struct x86_decoded_insn *in,
                         enum emu_class cls)
{
    struct dbt_cache *c = &v->cache;
    struct dbt_callout_rec *rec = &c->callouts[c->callout_count];
    rec->insn = *in;
    rec->store = false;
    EMIT(e, 0xc7, 0x05); /* mov dword [callout_id], n: the callout reads the low half */
    emit_ctx_rel(e, DBT_CTX_CALLOUT_ID, 4);
    emit_u32(e, c->callout_count++);
    emit_jmp(e, c->callout_stub);
    /* One that ends the block has nothing after it: where it does go on at the next
     * instruction (a REP OUTS with RCX = 0, a far JMP there), the callout finds that block
     * as it finds any other target (dbt_callout_run) - no exit and stub of 14 bytes for a
     * path that is almost never taken. */
    rec->resume = ends_block(cls) ? DBT_CALLOUT_ENDS_BLOCK : e->pos;
}

enum step { STEP_CONTINUE, STEP_END };

/* `in` has been decoded without its operands (x86_decode_instruction, `zctx`): they are
 * decoded here only where they are needed, to classify a MOV/PUSH/POP and for sensitive
 * instructions (the emulation core reads them). */
static enum step translate_one(struct dbt_vcpu *v, struct emitter *e, struct x86_decoded_insn *in,
                               const ZydisDecoderContext *zctx)
{
    struct dbt_cache *c = &v->cache;
    uint64_t next = in->rip + in->length;
    bool have_operands = false;
    if (!v->x87_used && uses_x87(in))
        dbt_x87_first_use(v);
    if (dbt_adaptive_wants(v, in->rip)) {
        /* a store that kept faulting on a traced page table: the core performs it, no signal
         * (adaptive translation, dbt_paging.c) */
        if (x86_decode_operands(&v->decoder, zctx, in) < 0)
            goto refuse;
        emit_callout(v, e, in, EMU_CLASS_NONE);
        c->callouts[c->callout_count - 1].store = true;
        return STEP_CONTINUE;
    }
    if (x86_classify_needs_operands(in) || dbt_has_fs_gs_override(in)) {
        if (x86_decode_operands(&v->decoder, zctx, in) < 0)
            goto refuse;
        have_operands = true;
    }
    enum emu_class cls = x86_classify(in);
    if (cls != EMU_CLASS_NONE) {
        if (!have_operands && x86_decode_operands(&v->decoder, zctx, in) < 0)
            goto refuse;
        bool q = in->info.operand_width == 64;
        bool inlined = false;
        uint32_t at = e->pos;
        if (cls == EMU_CLASS_CLI)
            inlined = dbt_emit_cli(e);
        else if (cls == EMU_CLASS_STI)
            inlined = dbt_emit_sti(e, next);
        else if (cls == EMU_CLASS_PUSHF && q)
            inlined = dbt_emit_pushf(e);
        else if (cls == EMU_CLASS_POPF && q)
            inlined = dbt_emit_popf(e, next);
        if (!inlined)
            e->pos = at; /* an emitter that declined emitted nothing (dbt_inline.h) */
        if (inlined) {
            v->common.stats.emulated[cls]++; /* inline sites count once, when translated */
            v->stats.inline_sensitive++;
            return STEP_CONTINUE;
        }
        emit_callout(v, e, in, cls);
        return ends_block(cls) ? STEP_END : STEP_CONTINUE;
    }
    if (dbt_has_fs_gs_override(in) &&
        (in->info.mnemonic == ZYDIS_MNEMONIC_JMP || in->info.mnemonic == ZYDIS_MNEMONIC_CALL))
        goto refuse; /* an FS/GS-relative branch target: reported by the dispatcher */
    switch (in->info.mnemonic) {
    case ZYDIS_MNEMONIC_JMP:
        if (relative_branch(in)) {
            emit_jmp_exit(e, branch_target(in));
            return STEP_END;
        }
        if (in->info.operand_width != 64 || !dbt_emit_indirect_jump(e, in, emit_relocated))
            goto refuse;
        return STEP_END;
    case ZYDIS_MNEMONIC_CALL:
        if (relative_branch(in)) {
            EMIT(e, 0x68); /* push imm32 (sign-extended; guest RIPs are below 2 GiB) */
            emit_u32(e, (uint32_t)next);
            emit_jmp_exit(e, branch_target(in));
            if (e->exit_count)
                e->exits[e->exit_count - 1].call = true;
        } else if (in->info.operand_width != 64 || !dbt_emit_indirect_call(e, in, emit_relocated)) {
            goto refuse;
        }
        if (!c->opt.ret_cache || e->record)
            return STEP_END;
        emit_return_point(e, in); /* the block goes on there */
        return STEP_CONTINUE;
    case ZYDIS_MNEMONIC_RDPKRU:
    case ZYDIS_MNEMONIC_WRPKRU:
        /* #UD: vmlab's virtual CPU has no protection keys (CPUID.7:ECX.PKU = 0, CR4.PKE
         * reserved). Native, a guest WRPKRU would set the host thread's PKRU. */
        goto refuse;
    case ZYDIS_MNEMONIC_XRSTOR:
    case ZYDIS_MNEMONIC_XRSTOR64:
        /* Where the host's XCR0 includes PKRU, a native XRSTOR could load it from a guest
         * image (SDM vol. 1 13.8): refused (#UD). Elsewhere it only loads the guest's own
         * x87/SSE/AVX state. */
        if (c->pkru_in_xcr0)
            goto refuse;
        break;
    case ZYDIS_MNEMONIC_RET:
        if (in->info.operand_width != 64)
            goto refuse;
        /* RET imm16 (C2) releases imm16 more bytes after the return address */
        dbt_emit_return(e, in->info.raw.imm[0].size ? (uint16_t)in->info.raw.imm[0].value.u : 0);
        return STEP_END;
    case ZYDIS_MNEMONIC_LOOP:
    case ZYDIS_MNEMONIC_LOOPE:
    case ZYDIS_MNEMONIC_LOOPNE:
    case ZYDIS_MNEMONIC_JRCXZ:
    case ZYDIS_MNEMONIC_JECXZ: /* rel8 only: the same instruction, over the fall-through jump */
        emit_short_branch(e, in);
        if (!e->overflow)
            e->out[e->pos - 1 - e->out_base] = 5; /* rel8: skip the 5-byte jmp below */
        emit_jmp_exit(e, next);
        emit_jmp_exit(e, branch_target(in));
        return STEP_END;
    default:
        break;
    }
    if (in->info.meta.category == ZYDIS_CATEGORY_COND_BR) { /* Jcc -> 0F 8x rel32 */
        uint8_t jcc[2] = {0x0f, (uint8_t)(0x80 | (in->info.opcode & 0x0f))};
        emit_branch_exit(e, jcc, 2, branch_target(in));
        emit_jmp_exit(e, next);
        return STEP_END;
    }
    switch (dbt_emit_segment_access(e, in)) {
    case DBT_SEGMENT_DONE:
        return STEP_CONTINUE;
    case DBT_SEGMENT_REFUSE:
        goto refuse;
    default:
        break;
    }
    /* IS_RELATIVE also marks RIP-relative memory operands; anything else relative that got
     * here (XBEGIN) is refused. */
    if ((in->info.attributes & ZYDIS_ATTRIB_IS_RELATIVE) && !rip_relative(in))
        goto refuse;
    if (!emit_relocated(e, in, -1))
        goto refuse;
    return STEP_CONTINUE;
refuse:
    /* Not translatable: the dispatcher emulates it, or raises #UD. */
    emit_exit(e, in->rip, c->exit_sensitive, false);
    return STEP_END;
}

static bool cache_has_room(const struct dbt_cache *c)
{
    return c->block_count + 1 < DBT_MAX_BLOCKS &&
           c->used + DBT_BLOCK_RESERVE + DBT_STUB_RESERVE <= c->stub_low &&
           c->map_count + DBT_MAX_BLOCK_INSNS + 1 < c->map_capacity &&
           c->callout_count + DBT_MAX_BLOCK_INSNS < DBT_MAX_CALLOUTS &&
           c->stub_count + DBT_MAX_PENDING_EXITS < DBT_MAX_STUBS &&
           c->return_count + DBT_MAX_BLOCK_RETURN_POINTS < DBT_MAX_RETURN_POINTS &&
           c->code_page_count + 2 <= DBT_MAX_CODE_PAGES;
}

/* An exit stub after its block's code (stubs_apart off) */
#define STUB_BYTES 15 /* mov dword [last_stub], imm32 (10) ; jmp exit_continue (5) */
/* An exit stub in the stub area (stubs_apart): the low byte of the id, then a short jump to
 * the nearest stub tail above, which writes the rest of the id and leaves; the stub just
 * below a tail falls into it. Stubs of consecutive blocks share a tail while it is within a
 * rel8 jump and their ids have its upper bits: about one tail per fourteen stubs. */
#define STUB_APART_BYTES 7 /* mov byte [last_stub], id (7) */
#define STUB_JMP_BYTES 2   /* jmp rel8 tail */
#define STUB_TAIL_BYTES 15 /* mov dword [last_stub + 1], id >> 8 (10) ; jmp exit_continue (5) */

static void patch_rel32(struct emitter *e, uint32_t at, uint32_t target)
{
    int32_t rel = (int32_t)((int64_t)target - (int64_t)(at + 4));
    memcpy(e->out + (at - e->out_base), &rel, 4);
}

/* mov byte [rip + field], imm8 */
static void emit_ctx_store_u8(struct emitter *e, unsigned field, uint8_t v)
{
    EMIT(e, 0xc6, 0x05);
    emit_ctx_rel(e, field, 1);
    emit_bytes(e, &v, 1);
}

/* The stub tail the block being committed leaves behind it (finish_block, block_commit). */
static _Thread_local uint32_t next_tail;
static _Thread_local uint32_t next_tail_high;

/* The block's exit stubs in the stub area, below c->stub_low, staged in `se`: laid out top
 * down first (where the stubs and any new tails go), then written. */
static void finish_stubs_apart(struct dbt_cache *c, struct emitter *e, struct emitter *se)
{
    uint32_t at[DBT_MAX_PENDING_EXITS], tail_at[DBT_MAX_PENDING_EXITS];
    uint32_t tail_high[DBT_MAX_PENDING_EXITS]; /* id >> 8 of the stubs that reach it */
    uint32_t pos = c->stub_low, tail = c->stub_tail;
    uint32_t high = c->stub_tail_high;
    unsigned tails = 0;
    for (unsigned i = 0; i < e->exit_count; i++) {
        uint32_t h = ((c->stub_count + i) | DBT_STUB_ID) >> 8;
        /* the stub's jmp rel8 would end at pos (tail == pos: it falls into the tail) */
        if (!tail || high != h || tail - pos > 127) {
            pos -= STUB_TAIL_BYTES;
            tail = tail_at[tails] = pos;
            high = tail_high[tails++] = h;
        }
        pos -= STUB_APART_BYTES + (tail == pos ? 0 : STUB_JMP_BYTES);
        at[i] = pos;
    }
    se->out_base = pos;
    se->limit = c->stub_low;
    for (unsigned k = 0; k < tails; k++) {
        se->pos = tail_at[k];
        /* bytes 1-4: the id's upper bits and a zero byte (ctx.last_stub's upper half is 0) */
        EMIT(se, 0xc7, 0x05);
        emit_ctx_rel(se, DBT_CTX_LAST_STUB + 1, 4);
        emit_u32(se, tail_high[k]);
        emit_jmp(se, c->exit_continue);
    }
    next_tail = tail;
    next_tail_high = high;
    for (unsigned i = 0; i < e->exit_count && !se->overflow; i++) {
        uint32_t id = c->stub_count + i;
        struct dbt_stub *st = &c->stubs[id];
        st->guest_rip = e->exits[i].rip;
        st->stub = se->pos = at[i];
        st->branch = e->exits[i].branch;
        st->call = e->exits[i].call;
        patch_rel32(e, st->branch, at[i]);
        emit_ctx_store_u8(se, DBT_CTX_LAST_STUB, (uint8_t)id);
        /* the tail this stub reaches: the lowest one above it */
        uint32_t to = c->stub_tail;
        for (unsigned k = 0; k < tails; k++)
            if (tail_at[k] > at[i])
                to = tail_at[k];
        if (to != se->pos) {
            EMIT(se, 0xeb);
            uint8_t rel = (uint8_t)(to - (se->pos + 1));
            emit_bytes(se, &rel, 1);
        }
    }
    se->pos = c->stub_low;
}

/* After the block's last instruction: an exit stub for every direct exit - there too, or
 * (stubs_apart) in the stub area at the end of the cache, staged in `se`. */
static void finish_block(struct dbt_cache *c, struct emitter *e, struct emitter *se)
{
    if (e->overflow)
        return;
    if (c->opt.stubs_apart) {
        finish_stubs_apart(c, e, se);
        if (se->overflow)
            e->overflow = true;
        return;
    }
    for (unsigned i = 0; i < e->exit_count && !e->overflow; i++) {
        uint32_t id = c->stub_count + i;
        struct dbt_stub *st = &c->stubs[id];
        st->guest_rip = e->exits[i].rip;
        st->stub = e->pos;
        st->branch = e->exits[i].branch;
        st->call = e->exits[i].call;
        patch_rel32(e, st->branch, e->pos);
        EMIT(e, 0xc7, 0x05); /* mov dword [last_stub], id | DBT_STUB_ID */
        emit_ctx_rel(e, DBT_CTX_LAST_STUB, 4);
        emit_u32(e, id | DBT_STUB_ID);
        emit_jmp(e, c->exit_continue);
    }
}

/* Where the translator reads guest code: the guest-physical pages the current address space
 * maps the block's addresses to (a block of at most 64 instructions spans at most two). */
struct code_source {
    const struct guest_memory *mem;
    unsigned pages;
    uint64_t gva[2], gpa[2];
    uint64_t end; /* where the instructions read from them end */
};

/* Translate the code page holding pc if needed. false if it cannot be fetched. */
static bool source_page(struct dbt_vcpu *v, struct code_source *src, uint64_t pc, unsigned *which)
{
    uint64_t page = pc & ~4095ULL;
    for (unsigned i = 0; i < src->pages; i++)
        if (src->gva[i] == page) {
            *which = i;
            return true;
        }
    uint32_t error;
    if (src->pages == 2 || dbt_code_page(v, page, &src->gpa[src->pages], &error) < 0)
        return false;
    src->gva[src->pages] = page;
    *which = src->pages++;
    return true;
}

/* Whether [pc, pc + length) lies in code pages the block already reads. */
static bool source_has(const struct code_source *src, uint64_t pc, unsigned length)
{
    bool first = false, last = false;
    for (unsigned i = 0; i < src->pages; i++) {
        first |= src->gva[i] == (pc & ~4095ULL);
        last |= src->gva[i] == ((pc + length - 1) & ~4095ULL);
    }
    return first && last;
}

/* Up to 15 bytes of guest code at pc, through the page tables: the number available (fewer
 * where the next page cannot be fetched; 0 if pc itself cannot be). */
static unsigned source_bytes(struct dbt_vcpu *v, struct code_source *src, uint64_t pc, uint8_t *buf,
                             const uint8_t **bytes)
{
    unsigned i;
    if (!source_page(v, src, pc, &i))
        return 0;
    const uint8_t *p = src->mem->ram + (src->gpa[i] - GUEST_RAM_BASE) + (pc & 4095);
    unsigned in_page = 4096 - (unsigned)(pc & 4095);
    if (in_page >= ZYDIS_MAX_INSTRUCTION_LENGTH) {
        *bytes = p;
        return ZYDIS_MAX_INSTRUCTION_LENGTH;
    }
    memcpy(buf, p, in_page);
    *bytes = buf;
    if (!source_page(v, src, pc + in_page, &i))
        return in_page;
    memcpy(buf + in_page, src->mem->ram + (src->gpa[i] - GUEST_RAM_BASE),
           ZYDIS_MAX_INSTRUCTION_LENGTH - in_page);
    return ZYDIS_MAX_INSTRUCTION_LENGTH;
}

/* Whether the instruction cannot fault, exit or branch, whatever its operands hold: register
 * and immediate forms of plain ALU and data movement (a memory operand could fault, and a
 * fault's frame shows RFLAGS; LEA and the multi-byte NOP compute no access). `kills`: it
 * writes CF whatever the operands (the shifts, which leave it alone for a zero count, are not
 * listed). */
static bool quiet_instruction(const struct x86_decoded_insn *in, bool *kills)
{
    const ZydisDecodedInstruction *i = &in->info;
    bool memory = (i->attributes & ZYDIS_ATTRIB_HAS_MODRM) && i->raw.modrm.mod != 3;
    *kills = false;
    if (i->attributes & (ZYDIS_ATTRIB_HAS_LOCK | ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPNE) ||
        i->encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY)
        return false; /* LOCK on a register form is #UD */
    switch (i->mnemonic) {
    case ZYDIS_MNEMONIC_ADD:
    case ZYDIS_MNEMONIC_SUB:
    case ZYDIS_MNEMONIC_AND:
    case ZYDIS_MNEMONIC_OR:
    case ZYDIS_MNEMONIC_XOR:
    case ZYDIS_MNEMONIC_CMP:
    case ZYDIS_MNEMONIC_TEST:
    case ZYDIS_MNEMONIC_NEG:
    case ZYDIS_MNEMONIC_IMUL:
    case ZYDIS_MNEMONIC_MUL:
        *kills = true;
        return !memory;
    case ZYDIS_MNEMONIC_LEA:
    case ZYDIS_MNEMONIC_NOP:
        return true;
    case ZYDIS_MNEMONIC_MOV: /* not to or from a control, debug or segment register */
        return !memory && i->opcode_map == ZYDIS_OPCODE_MAP_DEFAULT &&
               ((i->opcode >= 0x88 && i->opcode <= 0x8b) ||
                (i->opcode >= 0xb0 && i->opcode <= 0xbf) || i->opcode == 0xc6 || i->opcode == 0xc7);
    case ZYDIS_MNEMONIC_MOVZX:
    case ZYDIS_MNEMONIC_MOVSX:
    case ZYDIS_MNEMONIC_MOVSXD:
    case ZYDIS_MNEMONIC_INC:
    case ZYDIS_MNEMONIC_DEC:
    case ZYDIS_MNEMONIC_NOT:
    case ZYDIS_MNEMONIC_BSWAP:
        return !memory;
    default:
        return false;
    }
}

/* Whether the guest's CF is dead at pc for a carry check falling through into the code there
 * (dbt_lookup.c emit_check): within the next `budget` instructions of the block, one that
 * always writes CF comes before anything that reads CF, branches, accesses memory, can fault
 * or leaves translated code - where the guest, an exception frame or the VMM could see CF.
 * Conservative: "live" when in doubt. Zydis's flag table gives what each instruction tests. */
static bool carry_dead_at(struct dbt_vcpu *v, struct code_source *src, uint64_t pc, unsigned budget)
{
    if (v->cache.check_form != DBT_CHECK_CARRY)
        return false;
    for (unsigned k = 0; k < budget && k < 8; k++) {
        struct x86_decoded_insn in;
        ZydisDecoderContext zctx;
        uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];
        const uint8_t *bytes = NULL;
        if (!source_has(src, pc, ZYDIS_MAX_INSTRUCTION_LENGTH)) /* no page the block may not read */
            return false;
        unsigned avail = source_bytes(v, src, pc, buf, &bytes);
        if (!avail || x86_decode_instruction(&v->decoder, bytes, avail, pc, &in, &zctx) < 0)
            return false;
        bool kills;
        const ZydisAccessedFlags *flags = in.info.cpu_flags;
        if (!quiet_instruction(&in, &kills) || !flags || (flags->tested & ZYDIS_CPUFLAG_CF))
            return false;
        if (kills)
            return true;
        if ((flags->modified | flags->set_0 | flags->set_1 | flags->undefined) & ZYDIS_CPUFLAG_CF)
            return false;
        pc += in.length;
    }
    return false;
}

static void trace_block(struct dbt_vcpu *v, const struct dbt_block *b,
                        const struct code_source *src)
{
    struct trace_event *ev = trace_ring_push(v->common.trace);
    if (!ev)
        return;
    memset(ev, 0, sizeof(*ev));
    ev->kind = TRACE_BLOCK;
    ev->rip = b->guest_rip;
    ev->length = (uint8_t)(b->guest_size > 255 ? 255 : b->guest_size);
    ev->aux = (uint64_t)(uintptr_t)(v->cache.rx + b->host_offset);
    ev->old_value = b->host_size;             /* bytes of host code */
    ev->new_value = b->guest_size;            /* bytes of guest code */
    for (unsigned i = 0; i < src->pages; i++) /* where the printer reads the guest code */
        ev->extra[i] = src->gpa[i];
}

/* The staging buffers of the block being translated (see block_begin). */
static _Thread_local uint8_t stage[DBT_BLOCK_RESERVE], stub_stage[DBT_STUB_RESERVE];
static _Thread_local struct emitter e, se;

/* A new block record at the end of the cache and the emitters that write it: the block
 * goes into a staging buffer and is copied into the cache in one go. The cache lines next to
 * code that has just run are costly to store to (the processor checks stores against code it
 * has fetched: Intel SDM vol. 3A 11.6; measured here, a store a line after just-executed code
 * costs ~190 cycles, 1 KiB further ~65), so one copy beats dozens of small emitter stores: B
 * fell by about 10% with it. ibl_target: the block's lookup entry comes first (dbt_lookup.c). */
static struct dbt_block *block_begin(struct dbt_vcpu *v, uint64_t rip, bool ibl_target, bool record,
                                     bool carry_dead)
{
    struct dbt_cache *c = &v->cache;
    const struct guest_memory *mem = v->common.vm->config.mem;
    if (!cache_has_room(c)) {
        dbt_cache_flush(c, mem); /* full: start over (simple, and correct) */
        v->stats.cache_flushes++;
    }
    uint32_t index = c->block_count;
    struct dbt_block *b = &c->blocks[index];
    memset(b, 0, sizeof(*b));
    b->guest_rip = rip;
    b->host_offset = c->used; /* after the lookup entry, if any (below) */
    b->map_first = c->map_count;
    b->links_in = -1;
    b->hash_next = -1;
    memset(&e, 0, offsetof(struct emitter, exits));
    e.c = c;
    e.out = stage;
    e.out_base = e.pos = c->used;
    e.limit = c->used + DBT_BLOCK_RESERVE;
    e.record = record;
    if (ibl_target) {
        e.carry_dead = carry_dead;
        b->ibl_entry = dbt_emit_lookup_prefix(&e, rip);
        e.carry_dead = false;
        b->host_offset = e.pos;
    }
    memset(&se, 0, offsetof(struct emitter, exits));
    se.c = c;
    se.out = stub_stage;
    return b;
}

/* Copy the staged block and its stubs into the cache and enter it in the tables (cached: in
 * the hash table and the return-address cache, the code pages it was read from - src[0..n),
 * each up to its `end` - write-protected). NULL with *err if it did not fit. */
static struct dbt_block *block_commit(struct dbt_vcpu *v, struct dbt_block *b, uint64_t end,
                                      bool cached, const struct code_source *src, unsigned n,
                                      int *err)
{
    struct dbt_cache *c = &v->cache;
    finish_block(c, &e, &se);
    if (e.overflow) {
        c->map_count = b->map_first;
        *err = -ENOSPC;
        return NULL;
    }
    b->host_size = e.pos - b->host_offset;
    memcpy(c->rw + e.out_base, stage, e.pos - e.out_base);
    if (c->opt.stubs_apart) {
        uint32_t stub_bytes = c->stub_low - se.out_base;
        memcpy(c->rw + se.out_base, stub_stage, stub_bytes);
        c->stub_low = se.out_base;
        c->stub_tail = next_tail;
        c->stub_tail_high = next_tail_high;
        c->stub_bytes += stub_bytes;
        v->stats.host_stub_bytes += stub_bytes;
    }
    c->stub_count += e.exit_count;
    c->block_bytes += e.pos - e.out_base;
    v->stats.host_block_bytes += e.pos - e.out_base;
    b->map_count = c->map_count - b->map_first;
    if (!b->guest_size)
        b->guest_size = (uint32_t)(end - b->guest_rip);
    c->used = c->opt.align_blocks ? (e.pos + 15) & ~15u : e.pos;
    b->ret_first = c->return_count;
    b->ret_count = 0;
    if (cached) { /* a single block runs once: never re-protect the page it may write */
        /* Only bytes the block used count: a page the last instruction's decode merely
         * looked into does not. */
        for (unsigned k = 0; k < n; k++)
            for (unsigned i = 0; i < src[k].pages; i++)
                if (src[k].gva[i] < src[k].end)
                    dbt_code_pages_add(v, src[k].gva[i], src[k].gpa[i]);
        for (unsigned i = 0; i < e.ret_count; i++) {
            struct dbt_return_point *rp = &c->returns[c->return_count++];
            rp->guest_rip_low = e.rets[i].guest_rip_low;
            rp->host = e.rets[i].host;
        }
        b->ret_count = e.ret_count;
    }
    b->live = cached; /* a single or recording block runs once and is never looked up */
    if (cached) {
        dbt_cache_insert(c, (uint32_t)(b - c->blocks));
        dbt_cache_ret_fill(c, b);
    }
    c->block_count++;
    v->stats.blocks_translated++;
    if (v->common.trace)
        trace_block(v, b, &src[0]);
    return b;
}

struct dbt_block *dbt_block_get(struct dbt_vcpu *v, uint64_t rip, enum dbt_xlate mode,
                                bool ibl_target, int *err)
{
    struct dbt_cache *c = &v->cache;
    const struct guest_memory *mem = v->common.vm->config.mem;
    bool single = mode == DBT_XLATE_SINGLE;
    if (mode == DBT_XLATE_BLOCK) {
        struct dbt_block *hit = dbt_cache_lookup(c, rip);
        if (hit) {
            v->stats.cache_hits++;
            return hit;
        }
    }
    /* The first page is translated before anything else: a fetch fault, code outside RAM
     * (-EFAULT: the dispatcher raises the #PF) or outside the window (-ERANGE). */
    struct code_source src = {.mem = mem, .pages = 1, .gva = {rip & ~4095ULL}};
    uint32_t fetch_error;
    int rc = dbt_code_page(v, src.gva[0], &src.gpa[0], &fetch_error);
    if (rc < 0) {
        *err = rc == -ERANGE || rc == -ENOMEM ? rc : -EFAULT;
        return NULL;
    }
    uint64_t c0 = cycles(); /* one TSC read each side: clock reads would be much of B */
    unsigned max = single ? 1 : DBT_MAX_BLOCK_INSNS;
    bool entry = ibl_target && mode == DBT_XLATE_BLOCK;
    struct dbt_block *b = block_begin(v, rip, entry, mode == DBT_XLATE_RECORD,
                                      entry && carry_dead_at(v, &src, rip, max));
    uint64_t pc = rip;
    for (unsigned n = 0;; n++) {
        struct x86_decoded_insn in;
        ZydisDecoderContext zctx;
        uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];
        const uint8_t *bytes = NULL;
        struct dbt_map_entry *m = &c->map[c->map_count++];
        m->host_offset = e.pos;
        m->guest_rip_low = (uint32_t)(pc - GUEST_RAM_BASE);
        if (n == max) {
            if (single)
                emit_exit(&e, pc, c->exit_continue, false);
            else
                emit_jmp_exit(&e, pc);
            break;
        }
        unsigned avail = source_bytes(v, &src, pc, buf, &bytes);
        if (!avail || x86_decode_instruction(&v->decoder, bytes, avail, pc, &in, &zctx) < 0) {
            emit_exit(&e, pc, c->exit_sensitive, false); /* the dispatcher raises #UD / #PF */
            break;
        }
        v->stats.guest_insns_translated++;
        v->stats.guest_bytes_translated += in.length;
        pc += in.length;
        /* a CALL's return point, if any, falls into the code at pc (the rest of the block) */
        e.carry_dead = in.info.mnemonic == ZYDIS_MNEMONIC_CALL && !single &&
                       carry_dead_at(v, &src, pc, max - n - 1);
        if (translate_one(v, &e, &in, &zctx) == STEP_END)
            break;
        e.carry_dead = false;
    }
    src.end = pc;
    b = block_commit(v, b, pc, mode == DBT_XLATE_BLOCK, &src, 1, err);
    v->stats.translate_cycles += cycles() - c0;
    return b;
}

/* ---- traces (dbt_trace.c has the policy) ------------------------------------------------- */

static bool is_branch(const struct x86_decoded_insn *in)
{
    switch (in->info.mnemonic) {
    case ZYDIS_MNEMONIC_JMP:
    case ZYDIS_MNEMONIC_CALL:
    case ZYDIS_MNEMONIC_RET:
    case ZYDIS_MNEMONIC_LOOP:
    case ZYDIS_MNEMONIC_LOOPE:
    case ZYDIS_MNEMONIC_LOOPNE:
    case ZYDIS_MNEMONIC_JRCXZ:
    case ZYDIS_MNEMONIC_JECXZ:
        return true;
    default:
        return in->info.meta.category == ZYDIS_CATEGORY_COND_BR;
    }
}

/* The branch that ends block `i` of a trace, `succ` the block executed next (0: none, the
 * trace ends here with the branch as in a block). False if the path cannot go on this way. */
static bool trace_branch(struct dbt_vcpu *v, const struct x86_decoded_insn *in, uint64_t succ)
{
    uint64_t next = in->rip + in->length;
    bool indirect = !relative_branch(in); /* JMP/CALL r/m */
    if (dbt_has_fs_gs_override(in) || in->info.operand_width != 64)
        return false;
    switch (in->info.mnemonic) {
    case ZYDIS_MNEMONIC_LOOP:
    case ZYDIS_MNEMONIC_LOOPE:
    case ZYDIS_MNEMONIC_LOOPNE:
    case ZYDIS_MNEMONIC_JRCXZ:
    case ZYDIS_MNEMONIC_JECXZ:
        return false; /* rare in compiled code: the trace is not built */
    case ZYDIS_MNEMONIC_JMP:
        if (indirect)
            return succ ? dbt_emit_indirect_guarded(&e, in, emit_relocated, succ)
                        : dbt_emit_indirect_jump(&e, in, emit_relocated);
        if (!succ)
            emit_jmp_exit(&e, branch_target(in));
        return !succ || succ == branch_target(in);
    case ZYDIS_MNEMONIC_CALL:
        if (indirect)
            return succ ? dbt_emit_indirect_guarded(&e, in, emit_relocated, succ)
                        : dbt_emit_indirect_call(&e, in, emit_relocated);
        EMIT(&e, 0x68); /* push imm32: the return address */
        emit_u32(&e, (uint32_t)next);
        if (!succ)
            emit_jmp_exit(&e, branch_target(in));
        return !succ || succ == branch_target(in);
    case ZYDIS_MNEMONIC_RET:
        if (succ)
            return dbt_emit_indirect_guarded(&e, in, emit_relocated, succ);
        dbt_emit_return(&e, in->info.raw.imm[0].size ? (uint16_t)in->info.raw.imm[0].value.u : 0);
        return true;
    default: { /* Jcc: the recorded direction falls through, the other leaves the trace */
        uint64_t taken = branch_target(in);
        uint8_t cc = in->info.opcode & 0x0f;
        if (succ && succ != taken && succ != next)
            return false;
        uint8_t jcc[2] = {0x0f, (uint8_t)(0x80 | (succ == taken ? cc ^ 1 : cc))};
        emit_branch_exit(&e, jcc, 2, succ == taken ? next : taken);
        if (!succ)
            emit_jmp_exit(&e, next);
        return true;
    }
    }
    (void)v;
}

/* Whether the trace goes on into `succ` after the branch `in` (false: the trace ends with it).
 * Direct branches are followed; a RET to a return address a CALL of the trace pushed is
 * followed behind a compare that always holds unless the guest rewrote its return address;
 * other indirect branches only with dbt_options.trace_indirect: the target recorded once is
 * often not the next one (an interpreter's dispatch, a virtual call), and then the compare and
 * the lookup after it cost more than the lookup alone (docs/REPORT.md). calls[depth]: the
 * return addresses pushed along the trace. */
static bool follow_branch(const struct dbt_cache *c, const struct x86_decoded_insn *in,
                          uint64_t succ, uint64_t *calls, unsigned *depth)
{
    if (in->info.mnemonic == ZYDIS_MNEMONIC_RET) {
        bool own = *depth && calls[*depth - 1] == succ;
        *depth -= *depth != 0;
        return own || c->opt.trace_indirect;
    }
    bool follow = relative_branch(in) || c->opt.trace_indirect;
    if (follow && in->info.mnemonic == ZYDIS_MNEMONIC_CALL && *depth < DBT_TRACE_MAX_BLOCKS)
        calls[(*depth)++] = in->rip + in->length;
    return follow;
}

struct dbt_block *dbt_trace_translate(struct dbt_vcpu *v, const uint64_t *path, unsigned n,
                                      bool loop, int *err)
{
    struct dbt_cache *c = &v->cache;
    const struct guest_memory *mem = v->common.vm->config.mem;
    if (!n || c->range_count + n > DBT_MAX_BLOCKS || n > DBT_TRACE_MAX_BLOCKS ||
        c->code_page_count + 2 * n > DBT_MAX_CODE_PAGES)
        return NULL;
    uint64_t c0 = cycles();
    uint32_t map_before = c->map_count;
    struct dbt_block *b = block_begin(v, path[0], false, false, false);
    struct code_source src[DBT_TRACE_MAX_BLOCKS]; /* each block's pages, as dbt_block_get's */
    uint64_t hi = path[0];
    bool ok = true;
    unsigned cut = 0, depth = 0; /* depth: return addresses pushed by the trace so far */
    uint64_t calls[DBT_TRACE_MAX_BLOCKS];
    for (unsigned i = 0; i < n && ok && !cut; i++) {
        uint64_t succ = i + 1 < n ? path[i + 1] : loop ? path[0] : 0;
        uint64_t pc = path[i];
        src[i] = (struct code_source){.mem = mem};
        for (unsigned k = 0;; k++) {
            struct x86_decoded_insn in;
            ZydisDecoderContext zctx;
            uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];
            const uint8_t *bytes = NULL;
            unsigned avail =
                k < DBT_MAX_BLOCK_INSNS ? source_bytes(v, &src[i], pc, buf, &bytes) : 0;
            if (!avail || x86_decode_instruction(&v->decoder, bytes, avail, pc, &in, &zctx) < 0 ||
                (x86_classify_needs_operands(&in) || dbt_has_fs_gs_override(&in)
                     ? x86_decode_operands(&v->decoder, &zctx, &in) < 0
                     : false) ||
                x86_classify(&in) != EMU_CLASS_NONE) {
                ok = false; /* a sensitive instruction, or not a block as recorded */
                break;
            }
            struct dbt_map_entry *m = &c->map[c->map_count++];
            m->host_offset = e.pos;
            m->guest_rip_low = (uint32_t)(pc - GUEST_RAM_BASE);
            pc += in.length;
            if (is_branch(&in)) {
                if (succ && !follow_branch(c, &in, succ, calls, &depth)) {
                    succ = 0; /* the trace ends with the branch as a block would */
                    cut = i + 1;
                }
                ok = trace_branch(v, &in, succ) && !e.overflow;
                break;
            }
            if (translate_one(v, &e, &in, &zctx) == STEP_END) { /* refused */
                ok = false;
                break;
            }
        }
        struct dbt_range *r = &c->ranges[c->range_count + i];
        r->rip = path[i];
        r->size = (uint32_t)(pc - path[i]);
        src[i].end = pc;
        hi = pc > hi ? pc : hi;
    }
    if (cut) {
        n = cut;
        loop = false;
    }
    if (ok && loop)
        emit_jmp_exit(&e, path[0]); /* chained to the trace itself once it exists */
    if (!ok || e.overflow) {
        c->map_count = map_before;
        memset(b, 0, sizeof(*b));
        return NULL;
    }
    b->range_first = c->range_count;
    b->range_count = n;
    b->guest_size = c->ranges[c->range_count].size; /* the head's block; the rest: ranges */
    c->range_count += n;
    uint32_t first_stub = c->stub_count;
    b = block_commit(v, b, hi, true, src, n, err);
    v->stats.translate_cycles += cycles() - c0;
    if (!b)
        return NULL;
    for (uint32_t id = first_stub; loop && id < c->stub_count; id++) /* the loop back */
        if (c->stubs[id].guest_rip == path[0])
            dbt_cache_chain(c, id, (uint32_t)(b - c->blocks));
    return b;
}
