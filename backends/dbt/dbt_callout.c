/* dbt_callout.c - sensitive instructions handed to the emulation core.
 *
 * A callout site in translated code is `mov dword [callout_id], n; jmp callout_stub`. The stub
 * (dbt_stubs.c) saves the guest GPRs and RFLAGS in the context page, switches to the host
 * stack and calls dbt_callout_run(), which:
 *
 *   1. copies the guest state into struct vcpu_state (the emulation core's view),
 *   2. runs emu_execute() on the instruction decoded when the block was translated (callout
 *      record n: no decoding at run time),
 *   3. if the instruction only needs the virtual CPU (CPUID, MOV CR, LGDT, SGDT, LAR ...) and
 *      fell through, copies the state back and returns the host address after the site:
 *      the stub reloads the registers and translated code simply goes on;
 *      if it moved RIP (INT n, IRETQ, far branches, SYSCALL), continues at the target's
 *      translation when there is one;
 *   4. otherwise returns 0, and entry returns to the dispatcher with the exit prepared
 *      (IO, HLT, SHUTDOWN) or with nothing to report (a kick, an interrupt window, an SMC
 *      write by the emulated instruction itself).
 *
 * The same dbt_emulate() also serves the dispatcher, for the instructions the translator left
 * to it (undecodable bytes, a fetch outside RAM).
 */
#include <asm/processor-flags.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dbt_emit.h"
#include "vmm/emu_exit.h"
#include "vmm/guest_layout.h"
#include "vmm/trace_record.h"

/* The core's accesses go through the guest's tables; its stores, MOV CR3 and INVLPG reach the
 * shadow MMU, which tells dbt what became stale (dbt_paging.c). */
struct emu_ctx dbt_emu_ctx(struct dbt_vcpu *v)
{
    return (struct emu_ctx){
        .state = &v->state, .mem = v->common.vm->config.mem, .mmu = shadow_mmu_hooks(v->shadow)};
}

void dbt_set_exit(struct dbt_vcpu *v, uint32_t reason)
{
    v->exit->reason = reason;
    v->exit->rip = v->state.rip;
}

void dbt_state_to_ctx(struct dbt_vcpu *v, uint64_t target)
{
    struct dbt_ctx *ctx = v->cache.ctx;
    memcpy(ctx->gpr, v->state.gpr, sizeof(ctx->gpr));
    /* Only the arithmetic flags and DF become native (dbt.h DBT_VFLAGS says why not the
     * others); IF=1 is what the host thread runs with anyway. */
    ctx->rflags = (v->state.rflags & DBT_NATIVE_FLAGS) | X86_EFLAGS_IF | X86_EFLAGS_FIXED;
    ctx->vif = v->state.rflags & DBT_IF;
    ctx->vflags = v->state.rflags & DBT_VFLAGS;
    ctx->popf_tf = 0;
    ctx->seg_base[0] = v->state.fs.base;
    ctx->seg_base[1] = v->state.gs.base;
    ctx->target = target;
    ctx->exit_kind = 0;
}

uint64_t dbt_rflags_of(const struct dbt_ctx *ctx, uint64_t native)
{
    /* masked: the guest can write the context page */
    return (native & DBT_NATIVE_FLAGS) | (ctx->vif & DBT_IF) | (ctx->vflags & DBT_VFLAGS) |
           X86_EFLAGS_FIXED;
}

void dbt_state_from_ctx(struct dbt_vcpu *v)
{
    struct dbt_ctx *ctx = v->cache.ctx;
    memcpy(v->state.gpr, ctx->gpr, sizeof(ctx->gpr));
    v->state.rflags = dbt_rflags_of(ctx, ctx->rflags);
    v->state.rip = ctx->next_rip;
}

enum dbt_emulate_result dbt_deliver(struct dbt_vcpu *v, enum emu_event_kind kind, uint8_t vector,
                                    bool has_error, uint32_t error)
{
    struct emu_ctx ec = dbt_emu_ctx(v);
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    trace_record_exception(v->common.trace, v->state.rip, vector, error);
    if (emu_deliver_event(&ec, kind, vector, has_error, error, &res) == EMU_SHUTDOWN) {
        dbt_set_exit(v, VM_EXIT_SHUTDOWN);
        return DBT_EMULATE_LEAVE;
    }
    v->common.stats.exceptions_delivered++;
    return DBT_EMULATE_CONTINUE;
}

enum dbt_emulate_result dbt_emulate(struct dbt_vcpu *v, const struct x86_decoded_insn *insn)
{
    struct emu_ctx ec = dbt_emu_ctx(v);
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    v->state.interrupt_shadow = false;
    emu_execute(&ec, insn, &res);
    if (res.status == EMU_UNHANDLED) /* an instruction neither translatable nor emulated */
        return dbt_deliver(v, EMU_EVENT_EXCEPTION, 6, false, 0);
    v->stats.callouts++;
    v->common.stats.emulated[res.cls]++;
    if (res.status != EMU_EXCEPTION)
        trace_record_emulated(v->common.trace, insn, &res, v->state.rip);
    switch (res.status) {
    case EMU_OK:
        return DBT_EMULATE_CONTINUE;
    case EMU_EXIT_IO: {
        struct vm_exit *e = v->exit;
        dbt_set_exit(v, VM_EXIT_IO);
        emu_exit_fill_io(e, &res.io);
        if (res.io.direction != VM_IO_OUT) { /* completed by the next run with the VMM's data */
            v->pending_in = true;
            v->pending_insn = *insn;
            v->pending_io = res.io;
        }
        return DBT_EMULATE_LEAVE;
    }
    case EMU_EXIT_HLT:
        dbt_set_exit(v, VM_EXIT_HLT);
        v->exit->hlt.interrupts_enabled = (v->state.rflags & X86_EFLAGS_IF) != 0;
        return DBT_EMULATE_LEAVE;
    case EMU_EXCEPTION:
        if (res.vector == 14)
            v->state.cr2 = res.cr2;
        return dbt_deliver(v, EMU_EVENT_EXCEPTION, res.vector, res.has_error_code, res.error_code);
    case EMU_SHUTDOWN:
        dbt_set_exit(v, VM_EXIT_SHUTDOWN);
        return DBT_EMULATE_LEAVE;
    default:
        return DBT_EMULATE_CONTINUE;
    }
}

enum dbt_emulate_result dbt_emulate_at_rip(struct dbt_vcpu *v)
{
    struct emu_ctx ec = dbt_emu_ctx(v);
    uint64_t rip = v->state.rip;
    uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH];
    uint32_t error;
    unsigned n = emu_fetch(&ec, rip, bytes, sizeof(bytes), &error);
    if (n == 0) { /* the fetch itself faults: #PF with the walk's error code (I/D set) */
        v->state.cr2 = rip;
        return dbt_deliver(v, EMU_EVENT_EXCEPTION, 14, true, error);
    }
    struct x86_decoded_insn insn;
    int rc = x86_decode(&v->decoder, bytes, n, rip, &insn);
    if (rc == -ENODATA && n < ZYDIS_MAX_INSTRUCTION_LENGTH) {
        /* The instruction runs into a page that cannot be fetched: the fetch of its first byte
         * there faults (SDM vol. 3A 4.7: #PF, I/D = 1; CR2 = the faulting address). */
        uint8_t next;
        emu_fetch(&ec, rip + n, &next, 1, &error);
        v->state.cr2 = rip + n;
        return dbt_deliver(v, EMU_EVENT_EXCEPTION, 14, true, error);
    }
    if (rc < 0)
        return dbt_deliver(v, EMU_EVENT_EXCEPTION, 6, false, 0); /* undecodable: #UD */
    if (x86_classify(&insn) == EMU_CLASS_NONE && dbt_has_fs_gs_override(&insn)) {
        /* dbt_segment.c refused it: say so rather than run it on the host's segment base */
        char text[96];
        x86_format(&insn, text, sizeof(text));
        dbt_set_exit(v, VM_EXIT_INTERNAL_ERROR);
        v->exit->internal.suberror = VM_INTERNAL_SEGMENT_OVERRIDE;
        snprintf(v->exit->internal.message, sizeof(v->exit->internal.message),
                 "dbt does not translate this FS/GS-relative instruction: %s", text);
        return DBT_EMULATE_LEAVE;
    }
    v->stats.dispatcher_emulations++;
    return dbt_emulate(v, &insn);
}

/* Leave translated code with the state already in v->state (the dispatcher goes on). */
static uint64_t leave(struct dbt_ctx *ctx)
{
    ctx->exit_kind = DBT_EXIT_HANDLED;
    return 0;
}

uint64_t dbt_callout_run(struct dbt_vcpu *v)
{
    struct dbt_cache *c = &v->cache;
    struct dbt_ctx *ctx = c->ctx;
    /* Written by the callout site right before it jumped here, so in range; the context page
     * is guest-writable, though, and an index is never trusted from there. The site writes
     * the low half only (a 4-byte store: one byte shorter): the upper half is not read. */
    uint64_t id = (uint32_t)ctx->callout_id;
    dbt_state_from_ctx(v);
    if (id >= c->callout_count) {
        dbt_set_exit(v, VM_EXIT_INTERNAL_ERROR);
        v->exit->internal.suberror = VM_INTERNAL_TRANSLATION;
        snprintf(v->exit->internal.message, sizeof(v->exit->internal.message),
                 "dbt callout record %llu does not exist", (unsigned long long)id);
        return leave(ctx);
    }
    const struct dbt_callout_rec *rec = &c->callouts[id];
    v->state.rip = rec->insn.rip;
    uint32_t epoch = c->epoch;
    v->stats.adaptive_stores += rec->store;
    if ((rec->store ? dbt_emulate_store(v, &rec->insn) : dbt_emulate(v, &rec->insn)) ==
        DBT_EMULATE_LEAVE)
        return leave(ctx);
    /* The instruction wrote translated code (its blocks are gone), set an interrupt shadow
     * or the trap flag (the dispatcher runs the next instruction alone), or opened the window
     * the VMM waits for: the dispatcher decides. */
    if (c->epoch != epoch || v->state.interrupt_shadow || (v->state.rflags & X86_EFLAGS_TF) ||
        (v->common.request_interrupt_window && emu_interrupts_enabled(&v->state)))
        return leave(ctx);
    uint64_t target;
    if (v->state.rip == rec->insn.rip + rec->insn.length && rec->resume != DBT_CALLOUT_ENDS_BLOCK) {
        target = (uint64_t)(uintptr_t)(c->rx + rec->resume);
    } else {
        const struct dbt_block *b = dbt_cache_lookup(c, v->state.rip);
        if (!b)
            return leave(ctx);
        target = (uint64_t)(uintptr_t)(c->rx + b->host_offset);
    }
    dbt_state_to_ctx(v, target);
    /* A kick before this point is seen here; one after it finds ctx.target already written
     * and redirects it (dbt_signal.c). */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (v->common.kick_pending)
        return leave(ctx);
    return 1;
}
