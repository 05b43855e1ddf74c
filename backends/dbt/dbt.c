/* dbt.c - dynamic binary translation: guest code never runs where it was loaded.
 *
 * Guest RAM is mapped read/write but not executable. Before a guest basic block runs, the
 * translator (dbt_translate.c) decodes it with Zydis and writes a translation into the code
 * cache: innocuous instructions are copied verbatim, every sensitive instruction is rewritten.
 * What happens to a guest CLI, step by step:
 *
 *   1. The dispatcher below looks the guest RIP up in the cache; on a miss the block is
 *      translated once (the cost B the benchmarks measure).
 *   2. The CLI was translated into `and qword [rip+vflags], ~IF`: one instruction on the
 *      virtual RFLAGS in the context page next to the cache. No fault, no signal, no kernel:
 *      its cost is p, about a nanosecond.
 *   3. An OUT ends the block with an exit stub; the dispatcher then calls the emulation core
 *      (emu_execute, the same code trap_emulate's signal handler uses) - a callout - and
 *      returns the I/O exit to the VMM.
 *
 * Every Robin & Irvine instruction (SGDT, PUSHF, LAR, MOV from CS ...) is caught by the
 * translator, so dbt passes the tests trap_emulate must fail. Guest faults inside translated
 * code arrive as signals; the handler maps the host RIP back to the guest instruction and
 * delivers the exception through the guest IDT with the guest's registers. Pages holding
 * translated code are write-protected: a write (self-modifying code) invalidates the cache.
 *
 * Direct branches are chained: once the target block exists, the exit stub is patched into a
 * jump to it, so hot loops never leave the cache; the kick signal (budget, timer) and
 * self-modifying-code faults leave chained code at an exact guest instruction boundary.
 * Indirect jumps, calls and returns probe a direct-mapped lookup table inline and stay in
 * the cache on a hit; a miss exits to the dispatcher, which fills the entry.
 */
#define _GNU_SOURCE
#include "dbt.h"

#include <asm/processor-flags.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "vmm/guest_layout.h"

#define NATIVE_FLAGS                                                                               \
    (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF |               \
     X86_EFLAGS_TF | X86_EFLAGS_DF | X86_EFLAGS_OF | X86_EFLAGS_AC)
#define VIRTUAL_FLAGS (X86_EFLAGS_IF | X86_EFLAGS_IOPL)
#define ALTSTACK_SIZE (256 * 1024)

static __thread struct dbt_vcpu *dbt_current;
static const int dbt_signals[] = {SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGTRAP};
#define DBT_NSIGNALS 5

static int dbt_probe(char *reason, size_t size)
{
    if (size)
        reason[0] = 0;
    return 0;
}

struct dbt_vm {
    struct vm common;
};

static int dbt_vm_create(const struct vm_config *config, struct vm **out)
{
    if (!config->mem || !config->mem->fixed || config->mem->executable)
        return -EINVAL; /* GVA == HVA, and guest RAM must not be executable */
    struct dbt_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return -ENOMEM;
    vm->common.ops = &dbt_backend_ops;
    vm->common.config = *config;
    *out = &vm->common;
    return 0;
}

static void dbt_vm_destroy(struct vm *vm)
{
    free(vm);
}

/* ---- state between the vcpu_state and the context page -------------------------------- */

static void state_to_ctx(struct dbt_vcpu *v, uint64_t target)
{
    struct dbt_ctx *ctx = v->cache.ctx;
    memcpy(ctx->gpr, v->state.gpr, sizeof(ctx->gpr));
    ctx->rflags = (v->state.rflags & NATIVE_FLAGS & ~(uint64_t)X86_EFLAGS_TF) | X86_EFLAGS_FIXED;
    ctx->vflags = v->state.rflags & VIRTUAL_FLAGS;
    ctx->target = target;
    ctx->exit_kind = 0;
}

static void state_from_ctx(struct dbt_vcpu *v)
{
    struct dbt_ctx *ctx = v->cache.ctx;
    memcpy(v->state.gpr, ctx->gpr, sizeof(ctx->gpr));
    v->state.rflags = (ctx->rflags & NATIVE_FLAGS & ~(uint64_t)X86_EFLAGS_TF) |
                      (ctx->vflags & VIRTUAL_FLAGS) | (v->state.rflags & X86_EFLAGS_TF) |
                      X86_EFLAGS_FIXED;
    v->state.rip = ctx->next_rip;
}

static void set_exit(struct dbt_vcpu *v, uint32_t reason)
{
    v->exit->reason = reason;
    v->exit->rip = v->state.rip;
}

/* Deliver an exception; returns 1 if the run must leave (triple fault). */
static int deliver(struct dbt_vcpu *v, enum emu_event_kind kind, uint8_t vector, bool has_error,
                   uint32_t error)
{
    struct emu_ctx ec = {.state = &v->state, .mem = v->common.vm->config.mem};
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    if (v->common.trace) {
        struct trace_event *ev = trace_ring_push(v->common.trace);
        if (ev) {
            memset(ev, 0, sizeof(*ev));
            ev->kind = TRACE_EXCEPTION;
            ev->rip = v->state.rip;
            ev->vector = vector;
            ev->aux = error;
        }
    }
    if (emu_deliver_event(&ec, kind, vector, has_error, error, &res) == EMU_SHUTDOWN) {
        set_exit(v, VM_EXIT_SHUTDOWN);
        return 1;
    }
    v->common.stats.exceptions_delivered++;
    return 0;
}

/* The callout: emulate the sensitive instruction at state.rip. 1 = leave for the VMM. */
static int callout(struct dbt_vcpu *v)
{
    const struct guest_memory *mem = v->common.vm->config.mem;
    struct x86_decoded_insn insn;
    uint64_t rip = v->state.rip;
    if (!guest_ram_contains(mem, rip, 1)) {
        v->state.cr2 = rip;
        return deliver(v, EMU_EVENT_EXCEPTION, 14, true, 0x10); /* fetch from non-RAM */
    }
    uint64_t avail = GUEST_RAM_BASE + mem->ram_size - rip;
    if (avail > ZYDIS_MAX_INSTRUCTION_LENGTH)
        avail = ZYDIS_MAX_INSTRUCTION_LENGTH;
    if (x86_decode(&v->decoder, guest_ram_ptr(mem, rip, avail), avail, rip, &insn) < 0)
        return deliver(v, EMU_EVENT_EXCEPTION, 6, false, 0); /* undecodable: #UD */
    struct emu_ctx ec = {.state = &v->state, .mem = mem};
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    v->state.interrupt_shadow = false;
    emu_execute(&ec, &insn, &res);
    if (res.status == EMU_UNHANDLED) /* an innocuous instruction the translator refused */
        return deliver(v, EMU_EVENT_EXCEPTION, 6, false, 0);
    v->stats.callouts++;
    v->common.stats.emulated[res.cls]++;
    if (v->common.trace && res.status != EMU_EXCEPTION) {
        struct trace_event *ev = trace_ring_push(v->common.trace);
        if (ev) {
            memset(ev, 0, sizeof(*ev));
            ev->kind = TRACE_EMULATED;
            ev->rip = rip;
            memcpy(ev->bytes, insn.bytes, insn.length);
            ev->length = insn.length;
            ev->emu_class = (uint16_t)res.cls;
            ev->field = res.field;
            ev->old_value = res.old_value;
            ev->new_value = res.new_value;
            int64_t d = (int64_t)(v->state.rip - rip);
            ev->rip_delta = d >= 0 && d <= 15 ? (int32_t)d : -1;
            ev->aux = v->state.rip;
        }
    }
    switch (res.status) {
    case EMU_OK:
        return 0;
    case EMU_EXIT_IO: {
        struct vm_exit *e = v->exit;
        set_exit(v, VM_EXIT_IO);
        e->io.direction = res.io.direction;
        e->io.size = res.io.size;
        e->io.port = res.io.port;
        e->io.count = res.io.count ? res.io.count : 1;
        if (res.io.direction == VM_IO_OUT) {
            memcpy(e->io.data, res.io.data, (size_t)e->io.count * e->io.size);
        } else {
            v->pending_in = true;
            v->pending_insn = insn;
            v->pending_io = res.io;
        }
        return 1;
    }
    case EMU_EXIT_HLT:
        set_exit(v, VM_EXIT_HLT);
        v->exit->hlt.interrupts_enabled = (v->state.rflags & X86_EFLAGS_IF) != 0;
        return 1;
    case EMU_EXCEPTION:
        if (res.vector == 14)
            v->state.cr2 = res.cr2;
        return deliver(v, EMU_EVENT_EXCEPTION, res.vector, res.has_error_code, res.error_code);
    case EMU_SHUTDOWN:
        set_exit(v, VM_EXIT_SHUTDOWN);
        return 1;
    default:
        return 0;
    }
}

/* ---- signals: faults inside translated code, self-modifying code, kicks ---------------- */

static void chain(struct dbt_vcpu *v, int sig)
{
    for (int i = 0; i < DBT_NSIGNALS; i++)
        if (dbt_signals[i] == sig) {
            if (v)
                sigaction(sig, &v->old_actions[i], NULL);
            else
                signal(sig, SIG_DFL);
        }
}

static void dbt_signal_handler(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    struct dbt_vcpu *v = dbt_current;
    static const int uc_slot[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                    REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                    REG_R12, REG_R13, REG_R14, REG_R15};
    if (sig == VMLAB_SIG_KICK) {
        if (!v)
            return;
        v->common.kick_pending = 1;
        /* Chained blocks may loop without ever returning to the dispatcher: leave them now
         * if the signal interrupted the start of a guest instruction's translation (the guest
         * state is then exact); otherwise the next kick (10 ms later) tries again. */
        uint64_t at = v->in_guest ? dbt_guest_rip_at_boundary(&v->cache, (uint64_t)g[REG_RIP]) : 0;
        if (at) {
            for (int i = 0; i < 16; i++)
                v->state.gpr[i] = (uint64_t)g[uc_slot[i]];
            v->state.rflags = ((uint64_t)g[REG_EFL] & NATIVE_FLAGS & ~(uint64_t)X86_EFLAGS_TF) |
                              (v->cache.ctx->vflags & VIRTUAL_FLAGS) | X86_EFLAGS_FIXED;
            v->state.rip = at;
            set_exit(v, VM_EXIT_INTR);
            v->cache.ctx->exit_kind = DBT_EXIT_HANDLED;
            g[REG_RSP] = (greg_t)v->cache.ctx->host_rsp;
            g[REG_RIP] = (greg_t)(uintptr_t)(v->cache.rx + v->cache.exit_host);
            g[REG_EFL] = X86_EFLAGS_IF | X86_EFLAGS_FIXED;
        }
        return;
    }
    uint64_t addr = (uint64_t)(uintptr_t)si->si_addr;
    if (v && sig == SIGSEGV && addr >= GUEST_RAM_BASE && addr < GUEST_RAM_END) {
        size_t page = (addr - GUEST_RAM_BASE) / 4096;
        if (v->cache.protected_pages[page]) {
            /* Self-modifying code: the write hit a page with translations. Make it writable,
             * drop every translation at the next dispatch, retry the write. */
            mprotect(v->common.vm->config.mem->ram + page * 4096, 4096, PROT_READ | PROT_WRITE);
            v->cache.protected_pages[page] = 0;
            v->cache.flush_pending = true;
            v->stats.invalidations++;
            /* From translated code, leave at the storing instruction: chained blocks must not
             * run stale translations of the page it is about to change. */
            uint64_t at =
                v->in_guest ? dbt_guest_rip_at_boundary(&v->cache, (uint64_t)g[REG_RIP]) : 0;
            if (at) {
                for (int i = 0; i < 16; i++)
                    v->state.gpr[i] = (uint64_t)g[uc_slot[i]];
                v->state.rflags = ((uint64_t)g[REG_EFL] & NATIVE_FLAGS & ~(uint64_t)X86_EFLAGS_TF) |
                                  (v->cache.ctx->vflags & VIRTUAL_FLAGS) | X86_EFLAGS_FIXED;
                v->state.rip = at;
                v->cache.ctx->exit_kind = DBT_EXIT_HANDLED;
                g[REG_RSP] = (greg_t)v->cache.ctx->host_rsp;
                g[REG_RIP] = (greg_t)(uintptr_t)(v->cache.rx + v->cache.exit_host);
                g[REG_EFL] = X86_EFLAGS_IF | X86_EFLAGS_FIXED;
            }
            return;
        }
    }
    uint64_t host_rip = (uint64_t)g[REG_RIP];
    uint64_t guest_rip = v && v->in_guest ? dbt_guest_rip_of(&v->cache, host_rip) : 0;
    if (!guest_rip) {
        chain(v, sig); /* not the guest's fault: a host bug takes the default action */
        return;
    }
    for (int i = 0; i < 16; i++)
        v->state.gpr[i] = (uint64_t)g[uc_slot[i]];
    v->state.rflags = ((uint64_t)g[REG_EFL] & NATIVE_FLAGS & ~(uint64_t)X86_EFLAGS_TF) |
                      (v->cache.ctx->vflags & VIRTUAL_FLAGS) | X86_EFLAGS_FIXED;
    v->state.rip = guest_rip;
    unsigned trapno = (unsigned)g[REG_TRAPNO];
    uint32_t err = (uint32_t)g[REG_ERR];
    if (sig == SIGSEGV && trapno == 14 && addr >= GUEST_RAM_END && addr < GUEST_SPACE_END) {
        struct x86_decoded_insn insn;
        const struct guest_memory *mem = v->common.vm->config.mem;
        struct mmio_access acc;
        if (x86_decode(&v->decoder, guest_ram_ptr(mem, guest_rip, 1), 15, guest_rip, &insn) == 0 &&
            mmio_decode(&insn, &v->state, addr, &acc) == 0) {
            set_exit(v, VM_EXIT_MMIO);
            v->exit->mmio.gpa = acc.gpa;
            v->exit->mmio.len = acc.len;
            v->exit->mmio.is_write = acc.is_write;
            memcpy(v->exit->mmio.data, acc.data, sizeof(acc.data));
            v->pending_mmio = true;
            v->pending_insn = insn;
            v->pending_mmio_access = acc;
        } else {
            set_exit(v, VM_EXIT_INTERNAL_ERROR);
            snprintf(v->exit->internal.message, sizeof(v->exit->internal.message),
                     "MMIO access at %#llx by an instruction vmlab does not emulate",
                     (unsigned long long)addr);
        }
    } else if (sig == SIGSEGV && trapno == 14) {
        v->state.cr2 = addr;
        deliver(v, EMU_EVENT_EXCEPTION, 14, true, err & ~4u); /* U/S: the guest is at CPL 0 */
    } else if (sig == SIGSEGV) {
        deliver(v, EMU_EVENT_EXCEPTION, trapno == 12 ? 12 : 13, true, err);
    } else if (sig == SIGFPE) {
        deliver(v, EMU_EVENT_EXCEPTION, trapno == 16 ? 16 : trapno == 19 ? 19 : 0, false, 0);
    } else if (sig == SIGBUS && trapno == 17) {
        deliver(v, EMU_EVENT_EXCEPTION, 17, true, 0);
    } else if (sig == SIGTRAP) {
        deliver(v, EMU_EVENT_TRAP, 1, false, 0);
    } else if (sig == SIGILL) {
        deliver(v, EMU_EVENT_EXCEPTION, 6, false, 0);
    } else {
        v->state.cr2 = addr;
        deliver(v, EMU_EVENT_EXCEPTION, 14, true, 0);
    }
    /* Leave translated code: resume the host where exit_common ends. */
    v->cache.ctx->exit_kind = DBT_EXIT_HANDLED;
    g[REG_RSP] = (greg_t)v->cache.ctx->host_rsp;
    g[REG_RIP] = (greg_t)(uintptr_t)(v->cache.rx + v->cache.exit_host);
    g[REG_EFL] = X86_EFLAGS_IF | X86_EFLAGS_FIXED;
}

static int install_signals(struct dbt_vcpu *v)
{
    v->altstack = malloc(ALTSTACK_SIZE);
    if (!v->altstack)
        return -ENOMEM;
    stack_t ss = {.ss_sp = v->altstack, .ss_size = ALTSTACK_SIZE};
    if (sigaltstack(&ss, &v->old_altstack) < 0)
        return -errno;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = dbt_signal_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, VMLAB_SIG_KICK);
    for (int i = 0; i < DBT_NSIGNALS; i++)
        if (sigaction(dbt_signals[i], &sa, &v->old_actions[i]) < 0)
            return -errno;
    return sigaction(VMLAB_SIG_KICK, &sa, &v->old_actions[DBT_NSIGNALS]) < 0 ? -errno : 0;
}

/* ---- ops -------------------------------------------------------------------------------- */

static int dbt_vcpu_create(struct vm *vm, struct vcpu **out)
{
    struct dbt_vcpu *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->common.vm = vm;
    v->queued_interrupt = -1;
    unsigned lo, hi;
    v->stats.created_ns = emu_time_ns();
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    v->stats.created_cycles = ((uint64_t)hi << 32) | lo;
    x86_decoder_init(&v->decoder);
    int rc = dbt_cache_init(&v->cache);
    if (rc < 0) {
        free(v);
        return rc;
    }
    dbt_cache_flush(&v->cache, vm->config.mem);
    rc = install_signals(v);
    if (rc < 0) {
        dbt_cache_destroy(&v->cache);
        free(v->altstack);
        free(v);
        return rc;
    }
    dbt_current = v;
    *out = &v->common;
    return 0;
}

static void dbt_vcpu_destroy(struct vcpu *vc)
{
    struct dbt_vcpu *v = (struct dbt_vcpu *)vc;
    for (int i = 0; i < DBT_NSIGNALS; i++)
        sigaction(dbt_signals[i], &v->old_actions[i], NULL);
    sigaction(VMLAB_SIG_KICK, &v->old_actions[DBT_NSIGNALS], NULL);
    sigaltstack(&v->old_altstack, NULL);
    if (dbt_current == v)
        dbt_current = NULL;
    dbt_cache_flush(&v->cache, vc->vm->config.mem); /* unprotects guest pages */
    dbt_cache_destroy(&v->cache);
    free(v->altstack);
    free(v);
}

static int dbt_vcpu_get_state(struct vcpu *vc, struct vcpu_state *out)
{
    *out = ((struct dbt_vcpu *)vc)->state;
    return 0;
}

static int dbt_vcpu_set_state(struct vcpu *vc, const struct vcpu_state *in)
{
    ((struct dbt_vcpu *)vc)->state = *in;
    return 0;
}

static int dbt_vcpu_inject_interrupt(struct vcpu *vc, uint8_t vector)
{
    struct dbt_vcpu *v = (struct dbt_vcpu *)vc;
    if (!emu_interrupts_enabled(&v->state) || v->queued_interrupt >= 0)
        return -EBUSY;
    v->queued_interrupt = vector; /* delivered at the next vcpu_run, after pending I/O */
    return 0;
}

static int dbt_vcpu_run(struct vcpu *vc, struct vm_exit *exit)
{
    struct dbt_vcpu *v = (struct dbt_vcpu *)vc;
    struct emu_ctx ec = {.state = &v->state, .mem = vc->vm->config.mem};
    if (v->pending_in) {
        struct emu_result res;
        memset(&res, 0, sizeof(res));
        emu_complete_in(&ec, &v->pending_insn, &v->pending_io, exit->io.data, &res);
        v->pending_in = false;
    }
    if (v->pending_mmio) {
        mmio_complete(&v->pending_insn, &v->pending_mmio_access, &v->state, exit->mmio.data);
        v->pending_mmio = false;
    }
    memset(exit, 0, offsetof(struct vm_exit, io));
    v->exit = exit;
    dbt_current = v;
    if (v->queued_interrupt >= 0) {
        struct emu_result res;
        memset(&res, 0, sizeof(res));
        int vec = v->queued_interrupt;
        v->queued_interrupt = -1;
        if (emu_deliver_event(&ec, EMU_EVENT_EXTERNAL, (uint8_t)vec, false, 0, &res) ==
            EMU_SHUTDOWN) {
            set_exit(v, VM_EXIT_SHUTDOWN);
            return 0;
        }
    }
    void (*enter)(void) = (void (*)(void))(void *)(v->cache.rx + v->cache.entry_stub);
    uint32_t chain_from = 0;
    bool fill_ibl = false;
    for (;;) {
        if (vc->kick_pending) {
            set_exit(v, VM_EXIT_INTR);
            return 0;
        }
        if (vc->request_interrupt_window && emu_interrupts_enabled(&v->state)) {
            set_exit(v, VM_EXIT_IRQ_WINDOW_OPEN);
            return 0;
        }
        if (v->cache.flush_pending) {
            dbt_cache_flush(&v->cache, vc->vm->config.mem);
            v->stats.cache_flushes++;
            chain_from = 0; /* that stub is gone */
            fill_ibl = false;
        }
        bool single = v->state.interrupt_shadow;
        int err = 0;
        uint64_t flushes_before = v->stats.cache_flushes;
        struct dbt_block *b = dbt_block_get(v, v->state.rip, single, &err);
        if (v->stats.cache_flushes != flushes_before) {
            chain_from = 0; /* translating flushed the cache: the stub no longer exists */
            fill_ibl = false;
        }
        if (!b) {
            if (err == -EFAULT) { /* the guest jumped outside RAM: #PF on the fetch */
                v->state.cr2 = v->state.rip;
                if (deliver(v, EMU_EVENT_EXCEPTION, 14, true, 0x10))
                    return 0;
                continue;
            }
            set_exit(v, VM_EXIT_INTERNAL_ERROR);
            snprintf(exit->internal.message, sizeof(exit->internal.message),
                     "dbt could not translate the block at %#llx: %s",
                     (unsigned long long)v->state.rip, strerror(-err));
            return 0;
        }
        if (fill_ibl && !single) { /* an indirect branch missed the inline lookup */
            struct dbt_ibl_entry *ent = &v->cache.ibl[v->state.rip & (DBT_IBL_SIZE - 1)];
            ent->guest_rip = v->state.rip;
            ent->host = (uint64_t)(uintptr_t)(v->cache.rx + b->host_offset);
            v->stats.indirect_misses++;
        }
        fill_ibl = false;
        if (chain_from && !single && !v->cache.flush_pending) {
            dbt_chain(&v->cache, chain_from, b->host_offset);
            v->stats.chained_jumps++;
        }
        chain_from = 0;
        state_to_ctx(v, (uint64_t)(uintptr_t)(v->cache.rx + b->host_offset));
        v->in_guest = 1;
        enter();
        v->in_guest = 0;
        v->stats.block_exits++;
        uint64_t kind = v->cache.ctx->exit_kind;
        if (kind == DBT_EXIT_HANDLED) {
            if (exit->reason != VM_EXIT_NONE)
                return 0;
            continue;
        }
        bool was_shadowed = v->state.interrupt_shadow;
        uint32_t flush_epoch_stub = (uint32_t)v->cache.ctx->last_stub;
        state_from_ctx(v);
        if (kind == DBT_EXIT_CONTINUE && !was_shadowed) {
            chain_from = flush_epoch_stub;
            fill_ibl = flush_epoch_stub == 0; /* 0: an indirect branch's lookup missed */
        }
        v->state.interrupt_shadow = false;
        (void)was_shadowed;
        if (kind == DBT_EXIT_SENSITIVE && callout(v))
            return 0;
        if (v->common.trace &&
            v->common.trace->head - v->common.trace->tail > TRACE_RING_SIZE - 64) {
            set_exit(v, VM_EXIT_INTR); /* let the VMM drain the trace */
            return 0;
        }
    }
}

static int dbt_vcpu_stats(struct vcpu *vc,
                          void (*emit)(void *, const char *, uint64_t, const char *), void *ctx)
{
    struct dbt_vcpu *v = (struct dbt_vcpu *)vc;
    struct dbt_stats *s = &v->stats;
    emit(ctx, "blocks_translated", s->blocks_translated, "blocks");
    emit(ctx, "guest_insns_translated", s->guest_insns_translated, "instructions");
    emit(ctx, "guest_bytes_translated", s->guest_bytes_translated, "bytes");
    /* translate_ns from the TSC, at the TSC rate measured over this vCPU's lifetime */
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    uint64_t dc = (((uint64_t)hi << 32) | lo) - s->created_cycles;
    uint64_t dn = emu_time_ns() - s->created_ns;
    emit(ctx, "translate_ns", dc ? (uint64_t)((double)s->translate_cycles * dn / dc) : 0, "ns");
    emit(ctx, "translate_cycles", s->translate_cycles, "cycles");
    emit(ctx, "cache_hits", s->cache_hits, "lookups");
    emit(ctx, "block_exits", s->block_exits, "exits");
    emit(ctx, "chained_jumps", s->chained_jumps, "stubs patched");
    emit(ctx, "indirect_lookups", s->indirect_misses + v->cache.ctx->ibl_hits, "lookups");
    emit(ctx, "indirect_hits", v->cache.ctx->ibl_hits, "hits");
    emit(ctx, "callouts", s->callouts, "instructions");
    emit(ctx, "inline_sensitive", s->inline_sensitive, "translations");
    emit(ctx, "invalidations", s->invalidations, "pages");
    emit(ctx, "cache_flushes", s->cache_flushes, "flushes");
    return 0;
}

int dbt_block_host_code(struct vcpu *vc, uint64_t guest_rip, const uint8_t **code, size_t *len)
{
    struct dbt_vcpu *v = (struct dbt_vcpu *)vc;
    for (uint32_t i = v->cache.block_count; i-- > 0;)
        if (v->cache.blocks[i].guest_rip == guest_rip) {
            *code = v->cache.rx + v->cache.blocks[i].host_offset;
            *len = v->cache.blocks[i].host_size;
            return 0;
        }
    return -ENOENT;
}

const struct backend_ops dbt_backend_ops = {
    .name = "dbt",
    .summary = "Zydis-driven binary translator: innocuous code copied into a code cache, "
               "sensitive instructions rewritten into inline sequences or emulation callouts",
    .memory_flags = GUEST_MEMORY_FIXED,
    .probe = dbt_probe,
    .vm_create = dbt_vm_create,
    .vm_destroy = dbt_vm_destroy,
    .vcpu_create = dbt_vcpu_create,
    .vcpu_destroy = dbt_vcpu_destroy,
    .vcpu_get_state = dbt_vcpu_get_state,
    .vcpu_set_state = dbt_vcpu_set_state,
    .vcpu_run = dbt_vcpu_run,
    .vcpu_inject_interrupt = dbt_vcpu_inject_interrupt,
    .vcpu_stats = dbt_vcpu_stats,
};
