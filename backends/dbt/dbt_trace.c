/* dbt_trace.c - hot traces (dbt_options.traces), after Dynamo's "next executing tail" (NET).
 *
 * Heads. A loop shows itself by a backward branch: when the dispatcher chains a direct exit
 * (not a CALL's) to a block at or before the block it leaves, that block becomes a trace head and
 * the branch goes through the head's counting stub instead of straight to it:
 *
 *     mov [save_rcx], rcx ; mov rcx, [counter] ; lea rcx, [rcx-1] ; mov [counter], rcx
 *     jrcxz hot ; mov rcx, [save_rcx] ; jmp head
 *     hot: mov rcx, [save_rcx] ; mov dword [last_stub], DBT_TRACE_HOT | n
 *          mov qword [next_rip], head's RIP ; jmp exit_continue
 *
 * (flag-free, like everything translated code does; the counters are an array in the region,
 * next to the tables.)
 *
 * Recording. After DBT_TRACE_THRESHOLD runs the dispatcher records the path the guest takes
 * next from the head: each block runs as a recording copy (dbt_block_get DBT_XLATE_RECORD:
 * not cached, nothing chained, its indirect branches and returns leave for the dispatcher), and
 * the dispatcher notes where execution goes, until it comes back to the head (a loop), reaches
 * another head, DBT_TRACE_MAX_BLOCKS blocks, or anything but a branch (an exit, an exception,
 * a kick: the recording is abandoned).
 *
 * The trace (dbt_translate.c dbt_trace_translate) is the path's blocks translated one after
 * another: a direct branch along the path disappears (a CALL keeps its push), a conditional one
 * is inverted when the path follows its taken side, so that the path falls through and only the
 * other direction leaves the trace, and a RET to a return address a CALL of the trace pushed is
 * checked against it (dbt_lookup.c dbt_emit_indirect_guarded: equal, the trace goes on - always,
 * unless the guest rewrote its return address; else the lookup). Other indirect branches end
 * the trace as they end a block, unless dbt_options.trace_indirect: then they too are checked
 * against the target they had when the trace was recorded. That loses where the target varies
 * (an interpreter's dispatch, virtual calls: docs/REPORT.md), which is why it is off. A loop
 * trace ends with a jump back to its own start (a chained exit, so a kick can unchain it). The
 * trace replaces its head: the hash table finds it first, and every branch chained to the head
 * (the counting stub's included) is pointed at it. Its guest ranges are all write-protected
 * and all checked when a page is invalidated; faults and kicks map back through its map as in
 * any block. A head whose trace cannot be built (a sensitive instruction on the path, an
 * unusual branch) is chained directly from then on. A kick that lands in a counting stub sends
 * it to its hot exit (dbt_trace_on_kick; the recording starts when the VMM resumes the vCPU);
 * one in the head or the trace unchains it as in any block.
 *
 * Off by default: a trace pays on a loop that stays in it (recursion, compute: docs/REPORT.md)
 * but costs on a program whose hot loops run a few turns each from many places (the
 * footprint workload: hundreds of small traces, each beside its head, more code for an
 * instruction cache that is already the limit).
 */
#include "dbt_emit.h"

static struct dbt_block *block_of_stub(struct dbt_cache *c, uint32_t id)
{
    const struct dbt_block *b =
        dbt_cache_block_at(c, (uint64_t)(uintptr_t)(c->rx + c->stubs[id].branch));
    return (struct dbt_block *)b;
}

/* rel32 to an absolute address, for an instruction whose bytes after the rel32 are `tail` */
static void emit_rel_to(struct emitter *e, const void *target, unsigned tail)
{
    uint64_t next = (uint64_t)(uintptr_t)e->c->rx + e->pos + 4 + tail;
    emit_u32(e, (uint32_t)(int32_t)(int64_t)((uint64_t)(uintptr_t)target - next));
}

/* The counting stub of head n, in the exit-stub area; 0 if there is no room. *hot: its hot
 * exit. */
static uint32_t emit_counting_stub(struct dbt_cache *c, uint32_t n, const struct dbt_block *head,
                                   uint32_t *hot)
{
    enum { BYTES = 80 };
    if (c->stub_low < c->used + BYTES)
        return 0;
    uint32_t at = c->stub_low - BYTES;
    struct emitter e = {.c = c, .out = c->rw, .pos = at, .limit = c->stub_low};
    uint64_t *counter = &c->counters[n];
    emit_ctx_move(&e, RCX, DBT_CTX_SAVE_RCX, true);
    EMIT(&e, 0x48, 0x8b, 0x0d); /* mov rcx, [counter] */
    emit_rel_to(&e, counter, 0);
    EMIT(&e, 0x48, 0x8d, 0x49, 0xff); /* lea rcx, [rcx-1] */
    EMIT(&e, 0x48, 0x89, 0x0d);       /* mov [counter], rcx */
    emit_rel_to(&e, counter, 0);
    EMIT(&e, 0xe3, 0x0c); /* jrcxz hot (over the next 12 bytes) */
    emit_ctx_move(&e, RCX, DBT_CTX_SAVE_RCX, false);
    emit_jmp(&e, head->host_offset);
    /* hot: */
    *hot = e.pos;
    emit_ctx_move(&e, RCX, DBT_CTX_SAVE_RCX, false);
    EMIT(&e, 0xc7, 0x05); /* mov dword [last_stub], DBT_TRACE_HOT | n */
    emit_ctx_rel(&e, DBT_CTX_LAST_STUB, 4);
    emit_u32(&e, DBT_TRACE_HOT | n);
    emit_ctx_store_imm(&e, DBT_CTX_NEXT_RIP, (uint32_t)head->guest_rip);
    emit_jmp(&e, c->exit_continue);
    if (e.overflow)
        return 0;
    c->stub_low = at;
    c->stub_bytes += BYTES;
    return at;
}

void dbt_trace_chain(struct dbt_vcpu *v, uint32_t id, uint32_t target)
{
    struct dbt_cache *c = &v->cache;
    struct dbt_block *t = &c->blocks[target];
    if (!c->opt.traces || id >= c->stub_count || t->range_count) {
        dbt_cache_chain(c, id, target);
        return;
    }
    if (!t->head) {
        const struct dbt_block *from = block_of_stub(c, id);
        bool backward =
            from && !from->range_count && !c->stubs[id].call && t->guest_rip <= from->guest_rip;
        if (!backward || c->head_count == DBT_TRACE_HEADS) {
            dbt_cache_chain(c, id, target);
            return;
        }
        uint32_t n = c->head_count;
        uint64_t stub_bytes_before = c->stub_bytes;
        uint32_t hot = 0, stub = emit_counting_stub(c, n, t, &hot);
        if (!stub) {
            dbt_cache_chain(c, id, target);
            return;
        }
        v->stats.host_stub_bytes += c->stub_bytes - stub_bytes_before; /* the counting stub */
        c->counters[n] = DBT_TRACE_THRESHOLD;
        c->heads[n] =
            (struct dbt_trace_head){.block = target, .counter = stub, .hot = hot, .done = false};
        c->head_count++;
        t->head = n + 1;
        v->stats.trace_heads++;
    }
    const struct dbt_trace_head *h = &c->heads[t->head - 1];
    if (h->done)
        dbt_cache_chain(c, id, target);
    else
        dbt_cache_chain_to(c, id, target, h->counter);
}

void dbt_trace_start(struct dbt_vcpu *v, uint32_t head)
{
    struct dbt_cache *c = &v->cache;
    if (head >= c->head_count)
        return;
    if (c->heads[head].done || v->rec.active) { /* not expected: no more counting then */
        c->heads[head].done = true;
        dbt_cache_relink(c, c->heads[head].block, c->heads[head].block);
        return;
    }
    v->rec.active = true;
    v->rec.head = head;
    v->rec.length = 0;
}

/* Recording over: build the trace and put it in the head's place, or give up on the head. */
static void finish(struct dbt_vcpu *v, bool loop)
{
    struct dbt_cache *c = &v->cache;
    struct dbt_trace_head *h = &c->heads[v->rec.head];
    v->rec.active = false;
    h->done = true;
    uint32_t epoch = c->epoch;
    int err = 0;
    struct dbt_block *t =
        v->rec.length ? dbt_trace_translate(v, v->rec.path, v->rec.length, loop, &err) : NULL;
    if (c->epoch != epoch) /* the translation flushed the cache: heads and all are gone */
        return;
    if (!t) { /* chained straight to the head from now on */
        v->stats.traces_abandoned++;
        dbt_cache_relink(c, h->block, h->block);
        return;
    }
    v->stats.traces_built++;
    v->stats.trace_blocks += v->rec.length;
    dbt_cache_relink(c, h->block, (uint32_t)(t - c->blocks));
}

bool dbt_trace_step(struct dbt_vcpu *v, uint64_t block_rip, bool branch)
{
    struct dbt_cache *c = &v->cache;
    if (!v->rec.active)
        return false;
    const struct dbt_block *head = &c->blocks[c->heads[v->rec.head].block];
    if (!branch) { /* an exit, an exception, a kick: not a path to follow */
        v->rec.active = false;
        c->heads[v->rec.head].done = true;
        v->stats.traces_abandoned++;
        dbt_cache_relink(c, c->heads[v->rec.head].block, c->heads[v->rec.head].block);
        return false;
    }
    v->rec.path[v->rec.length++] = block_rip;
    uint64_t next = v->state.rip;
    const struct dbt_block *nb = dbt_cache_lookup(c, next);
    if (next == head->guest_rip)
        finish(v, true);
    else if (v->rec.length == DBT_TRACE_MAX_BLOCKS || (nb && (nb->head || nb->range_count)))
        finish(v, false);
    return v->rec.active;
}

uint64_t dbt_trace_on_kick(struct dbt_cache *c, uint64_t host, uint64_t rcx)
{
    uint64_t rx = (uint64_t)(uintptr_t)c->rx;
    for (uint32_t n = 0; n < c->head_count; n++) {
        const struct dbt_trace_head *h = &c->heads[n];
        if (host < rx + h->counter || host >= rx + h->hot)
            continue;                /* (at or after the hot exit: on its way out already) */
        if (host == rx + h->counter) /* before the stub's first instruction saved RCX */
            c->ctx->save_rcx = rcx;
        return rx + h->hot;
    }
    return 0;
}
