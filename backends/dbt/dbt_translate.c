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
 *   any other sensitive         a callout: `mov qword [callout_id], n; jmp callout_stub`,
 *                               with the instruction decoded now and kept in callout record
 *                               n for the emulation core (dbt_callout.c). Instructions that
 *                               transfer control (INT, IRET, far branches, SYSCALL, HLT) end
 *                               the block; the others continue it.
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
#include <sys/mman.h>

#include "dbt_emit.h"
#include "dbt_inline.h"
#include "vmm/guest_layout.h"

void dbt_emit_indirect_lookup(struct emitter *e);
void dbt_emit_return(struct emitter *e, uint16_t pop_bytes);

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

/* Copy the instruction (with `modrm_reg` >= 0: that ModRM.reg instead) and, if RIP-relative,
 * move its displacement so it still addresses the same guest byte from the cache. */
static bool emit_relocated(struct emitter *e, const struct x86_decoded_insn *in, int modrm_reg)
{
    uint8_t b[ZYDIS_MAX_INSTRUCTION_LENGTH];
    memcpy(b, in->bytes, in->length);
    if (modrm_reg >= 0) {
        unsigned m = in->info.raw.modrm.offset;
        b[m] = (uint8_t)((b[m] & 0xC7) | (modrm_reg << 3));
    }
    if (rip_relative(in)) {
        uint64_t host_next = (uint64_t)(uintptr_t)e->c->rx + e->pos + in->length;
        int64_t disp = in->info.raw.disp.value + (int64_t)(in->rip + in->length - host_next);
        if (disp != (int32_t)disp)
            return false; /* cannot happen for targets in the guest window */
        int32_t d32 = (int32_t)disp;
        memcpy(b + in->info.raw.disp.offset, &d32, 4);
    }
    emit_bytes(e, b, in->length);
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

/* Two-way branch: `head` (a Jcc rel32 or a LOOP/JRCXZ rel8 already emitted, its displacement
 * at `patch` of width `wide`) goes to the taken stub; the fall-through stub comes first. */
static void emit_two_way(struct emitter *e, uint32_t patch, bool wide, uint64_t taken,
                         uint64_t next)
{
    emit_exit(e, next, e->c->exit_continue, true);
    uint32_t at = e->pos;
    /* A Jcc rel32 right before a standard fall-through stub can be linked directly */
    emit_exit_jcc(e, taken, e->c->exit_continue, true,
                  wide && patch + DBT_JCC_DISP_BEFORE_STUB == at);
    if (e->overflow)
        return;
    if (wide) {
        int32_t rel = (int32_t)(at - (patch + 4));
        memcpy(e->out + (patch - e->out_base), &rel, 4);
    } else {
        e->out[patch - e->out_base] = (uint8_t)(at - (patch + 1));
    }
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

static bool ends_block(enum emu_class cls)
{
    switch (cls) {
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
    emit_ctx_store_imm(e, DBT_CTX_CALLOUT_ID, c->callout_count++);
    emit_jmp(e, c->callout_stub);
    rec->resume = e->pos;
    if (ends_block(cls))
        emit_exit(e, in->rip + in->length, c->exit_continue, true);
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
            emit_exit(e, branch_target(in), c->exit_continue, true);
            return STEP_END;
        }
        if (in->info.operand_width != 64 || !emit_relocated(e, in, 6)) /* FF /4 -> push FF /6 */
            goto refuse;
        EMIT(e, 0x8f, 0x05); /* pop qword [next_rip] */
        emit_ctx_rel(e, DBT_CTX_NEXT_RIP, 0);
        dbt_emit_indirect_lookup(e);
        return STEP_END;
    case ZYDIS_MNEMONIC_CALL:
        if (relative_branch(in)) {
            EMIT(e, 0x68); /* push imm32 (sign-extended; guest RIPs are below 2 GiB) */
            emit_u32(e, (uint32_t)next);
            emit_exit(e, branch_target(in), c->exit_continue, true);
            return STEP_END;
        }
        if (in->info.operand_width != 64 || !emit_relocated(e, in, 6)) /* FF /2 -> FF /6 */
            goto refuse;
        EMIT(e, 0x8f, 0x05);
        emit_ctx_rel(e, DBT_CTX_NEXT_RIP, 0);
        EMIT(e, 0x68);
        emit_u32(e, (uint32_t)next);
        dbt_emit_indirect_lookup(e);
        return STEP_END;
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
    case ZYDIS_MNEMONIC_JECXZ: /* rel8 only: the same instruction, pointed at the taken stub */
        emit_short_branch(e, in);
        emit_two_way(e, e->pos - 1, false, branch_target(in), next);
        return STEP_END;
    default:
        break;
    }
    if (in->info.meta.category == ZYDIS_CATEGORY_COND_BR) { /* Jcc -> 0F 8x rel32 */
        uint8_t jcc[6] = {0x0f, (uint8_t)(0x80 | (in->info.opcode & 0x0f))};
        emit_bytes(e, jcc, 6);
        emit_two_way(e, e->pos - 4, true, branch_target(in), next);
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
    return c->block_count + 1 < DBT_MAX_BLOCKS && c->used + DBT_BLOCK_RESERVE <= DBT_CACHE_SIZE &&
           c->map_count + DBT_MAX_BLOCK_INSNS + 1 < c->map_capacity &&
           c->callout_count + DBT_MAX_BLOCK_INSNS < DBT_MAX_CALLOUTS &&
           c->code_page_count + 2 <= DBT_MAX_CODE_PAGES;
}

/* Where the translator reads guest code: the guest-physical pages the current address space
 * maps the block's addresses to (a block of at most 64 instructions spans at most two). */
struct code_source {
    const struct guest_memory *mem;
    unsigned pages;
    uint64_t gva[2], gpa[2];
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
    ev->old_value = b->host_size;  /* bytes of host code */
    ev->new_value = b->guest_size; /* bytes of guest code */
    for (unsigned i = 0; i < src->pages; i++) /* where the printer reads the guest code */
        ev->extra[i] = src->gpa[i];
}

struct dbt_block *dbt_block_get(struct dbt_vcpu *v, uint64_t rip, bool single, int *err)
{
    struct dbt_cache *c = &v->cache;
    const struct guest_memory *mem = v->common.vm->config.mem;
    if (!single) {
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
    if (!cache_has_room(c)) {
        dbt_cache_flush(c, mem); /* full: start over (simple, and correct) */
        v->stats.cache_flushes++;
    }
    uint64_t c0 = cycles(); /* one TSC read each side: clock reads would be much of B */
    uint32_t index = c->block_count;
    struct dbt_block *b = &c->blocks[index];
    b->guest_rip = rip;
    b->host_offset = c->used;
    b->map_first = c->map_count;
    b->links_in = -1;
    b->hash_next = -1;
    /* The block is written into a staging buffer and copied into the cache in one go. The
     * cache lines next to code that has just run are costly to store to (the processor checks
     * stores against code it has fetched: Intel SDM vol. 3A 11.6; measured here, a store a
     * line after just-executed code costs ~190 cycles, 1 KiB further ~65), so one copy beats
     * dozens of small emitter stores: B fell by about 10% with it. */
    static _Thread_local uint8_t stage[DBT_BLOCK_RESERVE];
    struct emitter e = {.c = c,
                        .out = stage,
                        .out_base = c->used,
                        .pos = c->used,
                        .limit = c->used + DBT_BLOCK_RESERVE};
    uint64_t pc = rip;
    unsigned max = single ? 1 : DBT_MAX_BLOCK_INSNS;
    for (unsigned n = 0;; n++) {
        struct x86_decoded_insn in;
        ZydisDecoderContext zctx;
        uint8_t buf[ZYDIS_MAX_INSTRUCTION_LENGTH];
        const uint8_t *bytes = NULL;
        struct dbt_map_entry *m = &c->map[c->map_count++];
        m->host_offset = e.pos;
        m->guest_rip_low = (uint32_t)(pc - GUEST_RAM_BASE);
        if (n == max) {
            emit_exit(&e, pc, c->exit_continue, !single);
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
        if (translate_one(v, &e, &in, &zctx) == STEP_END)
            break;
    }
    if (e.overflow) {
        c->map_count = b->map_first;
        *err = -ENOSPC;
        return NULL;
    }
    b->host_size = e.pos - b->host_offset;
    memcpy(c->rw + b->host_offset, stage, b->host_size);
    b->map_count = c->map_count - b->map_first;
    b->guest_size = (uint32_t)(pc - rip);
    c->used = (e.pos + 15) & ~15u;
    /* The pages the block was read from, write-protected (a single block runs once: never
     * re-protect the page it may write). Only bytes the block used count: a page the last
     * instruction's decode merely looked into does not. */
    for (unsigned i = 0; !single && i < src.pages; i++)
        if (src.gva[i] < pc)
            dbt_code_pages_add(v, src.gva[i], src.gpa[i]);
    b->live = !single; /* a shadow block runs once and is never looked up */
    if (!single)
        dbt_cache_insert(c, index);
    c->block_count++;
    v->stats.blocks_translated++;
    v->stats.translate_cycles += cycles() - c0;
    if (v->common.trace)
        trace_block(v, b, &src);
    return b;
}
