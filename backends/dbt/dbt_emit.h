/* dbt_emit.h - writing host code into the cache (through the writable view).
 *
 * Every helper appends to an emitter; running past the reserved space sets `overflow` and the
 * caller drops the block. Positions are cache offsets: the executable view is at c->rx, so an
 * instruction at offset `pos` executes at c->rx + pos (rel32 targets are computed from that).
 */
#ifndef VMLAB_DBT_EMIT_H
#define VMLAB_DBT_EMIT_H

#include <string.h>

#include "dbt.h"

/* A direct exit waiting for its stub, written after the block's last instruction
 * (dbt_translate.c). */
struct dbt_pending_exit {
    uint32_t branch; /* cache offset of the rel32 that is to reach the stub */
    uint64_t rip;    /* guest RIP the exit goes to */
    bool call;       /* a CALL's (not a loop's back edge, for traces) */
};
#define DBT_MAX_PENDING_EXITS 160
#define DBT_MAX_BLOCK_RETURN_POINTS 64

struct emitter {
    struct dbt_cache *c;
    uint8_t *out; /* cache offset `out_base` is written at out[0] */
    uint32_t out_base;
    uint32_t pos;
    uint32_t limit;
    bool overflow;
    /* Only while a block is translated (zero elsewhere): */
    bool record;     /* a recording copy (dbt_trace.c): every branch leaves for the dispatcher */
    bool carry_dead; /* the guest's CF is written before it can be read or seen where the next
                      * check falls through (dbt_translate.c carry_dead_at; dbt_lookup.c) */
    unsigned exit_count, ret_count;
    struct dbt_pending_exit exits[DBT_MAX_PENDING_EXITS];
    struct dbt_return_point rets[DBT_MAX_BLOCK_RETURN_POINTS];
};

static inline void emit_bytes(struct emitter *e, const void *bytes, size_t n)
{
    if (e->pos + n > e->limit) {
        e->overflow = true;
        return;
    }
    memcpy(e->out + (e->pos - e->out_base), bytes, n);
    e->pos += (uint32_t)n;
}
#define EMIT(e, ...)                                                                               \
    do {                                                                                           \
        static const uint8_t emit_b_[] = {__VA_ARGS__};                                            \
        emit_bytes(e, emit_b_, sizeof(emit_b_));                                                   \
    } while (0)

static inline void emit_u32(struct emitter *e, uint32_t v)
{
    emit_bytes(e, &v, 4);
}

/* rel32 of a context field, for an instruction whose bytes after the rel32 are `tail` long. */
static inline void emit_ctx_rel(struct emitter *e, unsigned field, unsigned tail)
{
    uint64_t target = (uint64_t)(uintptr_t)e->c->ctx + field;
    uint64_t next = (uint64_t)(uintptr_t)e->c->rx + e->pos + 4 + tail;
    emit_u32(e, (uint32_t)(int32_t)(int64_t)(target - next));
}

/* jmp rel32 / jcc rel32 to a cache offset */
static inline void emit_jmp(struct emitter *e, uint32_t target)
{
    EMIT(e, 0xe9);
    emit_u32(e, (uint32_t)((int64_t)target - (int64_t)(e->pos + 4)));
}

/* mov qword [rip+field], imm32 (sign-extended) - no flags touched */
static inline void emit_ctx_store_imm(struct emitter *e, unsigned field, uint32_t imm)
{
    EMIT(e, 0x48, 0xc7, 0x05);
    emit_ctx_rel(e, field, 4);
    emit_u32(e, imm);
}

/* mov reg64 <-> qword [rip+field]: REX.W(+R) 8B/89, ModRM 00 reg 101 */
static inline void emit_ctx_move(struct emitter *e, unsigned reg, unsigned field, bool store)
{
    uint8_t b[3] = {(uint8_t)(0x48 | (reg >= 8 ? 4 : 0)), store ? 0x89 : 0x8b,
                    (uint8_t)(((reg & 7) << 3) | 5)};
    emit_bytes(e, b, 3);
    emit_ctx_rel(e, field, 0);
}
#define RAX 0
#define RCX 1
#define RSP 4

/* An unchained exit (27 bytes): leave for guest RIP `rip` through the fixed stub `via`, the
 * RIP in ctx.next_rip (the refused instruction, the window checks of dbt_inline.c). Exits
 * the dispatcher chains are emit_branch_exit's. `chainable` is kept for dbt_inline.c's
 * interface (the lab's): such exits are never chained. */
#define DBT_EXIT_STUB_SIZE 27
static inline void emit_exit_jcc(struct emitter *e, uint64_t rip, uint32_t via, bool chainable,
                                 bool after_jcc)
{
    (void)chainable;
    (void)after_jcc;
    if ((uint64_t)(int64_t)(int32_t)rip == rip) {
        emit_ctx_store_imm(e, DBT_CTX_NEXT_RIP, (uint32_t)rip);
    } else { /* a branch far outside RAM: two dword stores, never chained */
        EMIT(e, 0xc7, 0x05);
        emit_ctx_rel(e, DBT_CTX_NEXT_RIP, 4);
        emit_u32(e, (uint32_t)rip);
        EMIT(e, 0xc7, 0x05);
        emit_ctx_rel(e, DBT_CTX_NEXT_RIP + 4, 4);
        emit_u32(e, (uint32_t)(rip >> 32));
    }
    emit_ctx_store_imm(e, DBT_CTX_LAST_STUB, 0);
    emit_jmp(e, via);
}
static inline void emit_exit(struct emitter *e, uint64_t rip, uint32_t via, bool chainable)
{
    emit_exit_jcc(e, rip, via, chainable, false);
}

/* A direct exit the dispatcher chains: the branch `op` (JMP E9, or a Jcc 0F 8x; `oplen` bytes
 * without the rel32) towards an exit stub for guest RIP `rip`, written after the block's code
 * (dbt_translate.c), in its exit-stub area when stubs are kept apart. Once the target block
 * exists, the dispatcher points the rel32 straight at it. */
static inline void emit_branch_exit(struct emitter *e, const uint8_t *op, size_t oplen,
                                    uint64_t rip)
{
    if (e->exit_count == DBT_MAX_PENDING_EXITS) {
        e->overflow = true;
        return;
    }
    emit_bytes(e, op, oplen);
    e->exits[e->exit_count].branch = e->pos;
    e->exits[e->exit_count].call = false;
    e->exits[e->exit_count++].rip = rip;
    emit_u32(e, 0); /* pointed at the stub once it is placed */
}
static inline void emit_jmp_exit(struct emitter *e, uint64_t rip)
{
    static const uint8_t jmp = 0xe9;
    emit_branch_exit(e, &jmp, 1, rip);
}

/* dbt_lookup.c: indirect branches, returns and the return-address cache. `relocate` copies
 * an instruction with another ModRM.reg, or (DBT_RELOCATE_LOAD_RCX) as `mov rcx, r/m64` of
 * its memory operand; false if it cannot (dbt_translate.c). */
#define DBT_RELOCATE_LOAD_RCX (-2)
typedef bool dbt_relocate_fn(struct emitter *e, const struct x86_decoded_insn *in, int modrm_reg);
void dbt_emit_lookup_routines(struct emitter *e); /* the shared ones, in the fixed stubs */
/* The longest lookup entry with its jump to the block: the carry check with its CF restore
 * (mov 7, lea 7, adcx 10, jc 6, adcx 9, mov 7) and jmp 5 (dbt_lookup.c emit_check) */
#define DBT_LOOKUP_ENTRY_MAX_BYTES 51
uint32_t dbt_emit_lookup_entry(struct emitter *e, uint64_t guest_rip, uint32_t block);
uint32_t dbt_emit_lookup_prefix(struct emitter *e, uint64_t guest_rip);
bool dbt_emit_indirect_jump(struct emitter *e, const struct x86_decoded_insn *in,
                            dbt_relocate_fn *relocate);
bool dbt_emit_indirect_call(struct emitter *e, const struct x86_decoded_insn *in,
                            dbt_relocate_fn *relocate);
void dbt_emit_return(struct emitter *e, uint16_t pop_bytes);
uint32_t dbt_emit_return_point(struct emitter *e, uint64_t ret_rip); /* its entry */
bool dbt_emit_indirect_guarded(struct emitter *e, const struct x86_decoded_insn *in,
                               dbt_relocate_fn *relocate, uint64_t expected);

/* dbt_segment.c: an instruction with an FS or GS override, rewritten to use the guest's base.
 * NONE: it needs no rewriting (no override, or the override does not apply to a memory
 * access); REFUSE: dbt cannot rewrite it (the dispatcher reports it). */
enum dbt_segment_result { DBT_SEGMENT_NONE, DBT_SEGMENT_DONE, DBT_SEGMENT_REFUSE };
enum dbt_segment_result dbt_emit_segment_access(struct emitter *e,
                                                const struct x86_decoded_insn *in);
/* Whether the instruction has an FS or GS override. */
static inline bool dbt_has_fs_gs_override(const struct x86_decoded_insn *in)
{
    return in->info.attributes & (ZYDIS_ATTRIB_HAS_SEGMENT_FS | ZYDIS_ATTRIB_HAS_SEGMENT_GS);
}

#endif
