/* dbt_signal.c - what reaches translated code as a signal: guest faults, self-modifying code
 * and kicks.
 *
 * The handler runs on a sigaltstack (the native stack may be the guest's) and only records and
 * redirects: no allocation, no locks, no output.
 *
 *   SIGSEGV (page fault) in the window         the shadow MMU classifies it (mmu/shadow_mmu.h):
 *                                              a hidden fault re-executes; a true #PF goes to
 *                                              the guest; MMIO becomes an MMIO exit; a store
 *                                              to a traced page table is performed by the
 *                                              emulation core (and, once an instruction keeps
 *                                              doing so, retranslated: dbt_paging.c); a store
 *                                              to a page code was translated from is
 *                                              self-modifying code: its blocks are gone and
 *                                              the page writable when the shadow returns. If
 *                                              the storing block survives (it is on another
 *                                              page) the store simply retries. If the storing
 *                                              block was itself invalidated, leave to the
 *                                              dispatcher at the store, which re-executes it
 *                                              alone and then translates the rest afresh.
 *                                              The one store not at an instruction boundary
 *                                              (an indirect CALL's return-address push)
 *                                              retries in place: only the block's indirect
 *                                              lookup follows it, and invalidated blocks are
 *                                              out of that table.
 *   SIGSEGV/SIGFPE/SIGILL/SIGTRAP/SIGBUS in     a guest exception. The host RIP maps back to
 *   translated code                            the guest instruction; the registers in the
 *                                              signal frame are the guest's (only the inline
 *                                              sequences' scratch slots are not, and none of
 *                                              their instructions faults after changing a
 *                                              register). SIGSEGV with trapno 14: see above;
 *                                              other SIGSEGV #GP (#SS); SIGFPE #DE/#MF/
 *                                              #XM; SIGILL #UD; SIGTRAP #DB; SIGBUS #AC. It is
 *                                              delivered through the guest IDT with the
 *                                              emulation core and entry returns.
 *   VMLAB_SIG_KICK                             the VMM wants the vCPU back (timer, budget).
 *                                              At an instruction boundary: leave now. Inside
 *                                              an instruction's translation: unchain the
 *                                              interrupted block's exit stubs and make inline
 *                                              lookups miss (ctx.kick), so it leaves at the
 *                                              block's end. Before translated code runs (the
 *                                              dispatcher, entry, a callout): point ctx.target
 *                                              at the kick stub.
 *   anything else                              a host bug: the previous handler is restored
 *                                              and the fault recurs into it on return.
 */
#define _GNU_SOURCE
#include <asm/processor-flags.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "dbt.h"
#include "mmu/page_walk.h"
#include "vmm/emu_exit.h"
#include "vmm/guest_layout.h"

#define ALTSTACK_SIZE (256 * 1024)

__thread struct dbt_vcpu *dbt_current;
static const int dbt_signals[] = {SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGTRAP, 0};
#define DBT_NSIGNALS 6 /* the last slot is VMLAB_SIG_KICK (not a constant expression) */

static int signal_slot(int sig)
{
    for (int i = 0; i < DBT_NSIGNALS - 1; i++)
        if (dbt_signals[i] == sig)
            return i;
    return DBT_NSIGNALS - 1;
}

static const int uc_slot[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                REG_R12, REG_R13, REG_R14, REG_R15};

/* The guest state is the signal frame's registers at guest instruction `rip`. Inside the
 * translation of an FS/GS-relative access one guest register is in ctx.seg_save
 * (dbt_segment.c); at its first byte, none is. */
static void state_from_frame(struct dbt_vcpu *v, const greg_t *g, uint64_t rip)
{
    for (int i = 0; i < 16; i++)
        v->state.gpr[i] = (uint64_t)g[uc_slot[i]];
    uint64_t host = (uint64_t)g[REG_RIP];
    const struct dbt_map_entry *m = dbt_cache_map_entry_of(&v->cache, host);
    if (m && (m->guest_rip_low & DBT_MAP_SEG_FIXUP) &&
        host != (uint64_t)(uintptr_t)(v->cache.rx + m->host_offset))
        v->state.gpr[(m->guest_rip_low >> DBT_MAP_SEG_REG_SHIFT) & 15] = v->cache.ctx->seg_save;
    /* The PUSH imm32 of a CALL r/m (dbt_lookup.c) comes after the target was loaded into RCX:
     * if it faults, the guest's RCX is in ctx.save_rcx. (Every other PUSH imm32 translated code
     * runs is its guest instruction's first host instruction, with RCX the guest's.) */
    if (m && host != (uint64_t)(uintptr_t)(v->cache.rx + m->host_offset) &&
        *(const uint8_t *)(uintptr_t)host == 0x68)
        v->state.gpr[X86_RCX] = v->cache.ctx->save_rcx;
    v->state.rflags = dbt_rflags_of(v->cache.ctx, (uint64_t)g[REG_EFL]);
    v->state.rip = rip;
}

/* Return from entry (the host resumes in the dispatcher) as if translated code had exited. */
static void leave_to_dispatcher(struct dbt_vcpu *v, greg_t *g)
{
    v->cache.ctx->exit_kind = DBT_EXIT_HANDLED;
    g[REG_RSP] = (greg_t)v->cache.host->host_rsp;
    g[REG_RIP] = (greg_t)(uintptr_t)(v->cache.rx + v->cache.exit_host);
    g[REG_EFL] = X86_EFLAGS_IF | X86_EFLAGS_FIXED;
}

static bool in_cache(const struct dbt_cache *c, uint64_t host)
{
    uint64_t rx = (uint64_t)(uintptr_t)c->rx;
    return host >= rx && host < rx + c->used;
}

static void on_kick(struct dbt_vcpu *v, greg_t *g)
{
    struct dbt_cache *c = &v->cache;
    v->common.kick_pending = 1;
    c->ctx->kick = 1;
    if (!v->in_guest)
        return; /* the dispatcher checks kick_pending before entering */
    /* The next indirect branch or return faults on the lookup tables (on_table_fault) */
    if (!c->tables_revoked)
        dbt_cache_revoke_tables(c);
    uint64_t host = (uint64_t)g[REG_RIP];
    uint64_t at = dbt_cache_guest_rip_at_boundary(c, host);
    if (at) {
        state_from_frame(v, g, at);
        dbt_set_exit(v, VM_EXIT_INTR);
        leave_to_dispatcher(v, g);
        return;
    }
    const struct dbt_block *b = dbt_cache_block_at(c, host);
    if (b) {
        dbt_cache_unchain_from(c, b);
        return;
    }
    if (dbt_cache_in_stub_area(c, host)) {
        /* an exit stub kept apart: on its way out; a trace head's counting stub, which goes
         * back into the loop: out through its hot exit (dbt_trace.c) */
        uint64_t out = dbt_trace_on_kick(c, host, (uint64_t)g[REG_RCX]);
        if (out)
            g[REG_RIP] = (greg_t)out;
        return;
    }
    uint64_t rx = (uint64_t)(uintptr_t)c->rx;
    if (!in_cache(c, host) || host < rx + c->exit_common ||
        (host >= rx + c->callout_stub && host < rx + c->callout_end)) {
        /* Not yet in translated code (the dispatcher after its check, the entry stub, a
         * callout whose continuation is already written): go to the kick stub instead. On
         * the way out (exit_common and the exit stubs) nothing needs doing, and the shared
         * lookup routines (dbt_lookup.c) miss once ctx.kick is set. */
        c->ctx->next_rip = v->state.rip;
        c->ctx->target = (uint64_t)(uintptr_t)(c->rx + c->kick_stub);
    }
}

/* An indirect branch or a return read a lookup table a kick had revoked (dbt_lookup.c): its
 * target is in ctx.next_rip and the guest's RCX in ctx.save_rcx, everything else in the
 * registers - the exact state of the guest at the target. Leave from there. */
static bool on_table_fault(struct dbt_vcpu *v, greg_t *g, uint64_t addr)
{
    struct dbt_cache *c = &v->cache;
    if (!v->in_guest || !c->tables_revoked || !dbt_cache_in_tables(c, addr))
        return false;
    /* a RET through the return-address cache left its target on the guest stack, where its
     * POP just read it (dbt_lookup.c); the lookup table's users, in ctx.next_rip */
    uint64_t ret = (uint64_t)(uintptr_t)c->ret;
    uint64_t target = addr >= ret && addr < ret + DBT_RET_SIZE * 8
                          ? *(const uint64_t *)(uintptr_t)((uint64_t)g[REG_RSP] - 8)
                          : c->ctx->next_rip;
    g[REG_RCX] = (greg_t)c->ctx->save_rcx;
    state_from_frame(v, g, target);
    dbt_set_exit(v, VM_EXIT_INTR);
    leave_to_dispatcher(v, g);
    return true;
}

/* A guest access that leads outside RAM (the MMIO window): the core emulates the instruction
 * (emu/emu_mmio.h); what it does not emulate ends as suberror 1, as for KVM and trap_emulate,
 * the message naming the instruction. */
static void on_mmio(struct dbt_vcpu *v, uint64_t rip, uint64_t addr)
{
    struct x86_decoded_insn insn;
    struct emu_ctx ec = dbt_emu_ctx(v);
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH];
    uint32_t error;
    unsigned n = emu_fetch(&ec, rip, bytes, sizeof(bytes), &error);
    if (!n || x86_decode(&v->decoder, bytes, n, rip, &insn) < 0) {
        dbt_set_exit(v, VM_EXIT_INTERNAL_ERROR);
        v->exit->internal.suberror = VM_INTERNAL_EMULATION;
        snprintf(v->exit->internal.message, sizeof(v->exit->internal.message),
                 "MMIO access at %#llx by an undecodable instruction", (unsigned long long)addr);
        return;
    }
    switch (emu_mmio_start(&ec, &insn, &v->pending_mmio_access, &res)) {
    case EMU_MMIO_ACCESS:
        dbt_set_exit(v, VM_EXIT_MMIO);
        emu_exit_fill_mmio(v->exit, &v->pending_mmio_access.access);
        v->pending_mmio = true;
        break;
    case EMU_MMIO_EXCEPTION:
        if (res.vector == 14)
            v->state.cr2 = res.cr2;
        dbt_deliver(v, EMU_EVENT_EXCEPTION, res.vector, res.has_error_code, res.error_code);
        break;
    case EMU_MMIO_UNSUPPORTED:
        dbt_set_exit(v, VM_EXIT_INTERNAL_ERROR);
        emu_exit_fill_mmio_failure(v->exit, &v->pending_mmio_access);
        break;
    default:
        break;
    }
}

/* Self-modifying code: the store hit a page code was translated from; the shadow MMU made it
 * writable and dbt_paging.c dropped its blocks. If the storing block survives (it is on
 * another page) the store simply retries; if it went too, leave before the store, which the
 * dispatcher re-executes alone before translating afresh. */
static void on_code_write(struct dbt_vcpu *v, greg_t *g)
{
    const struct dbt_block *b = dbt_cache_block_at(&v->cache, (uint64_t)g[REG_RIP]);
    if (b && b->live)
        return;
    uint64_t at = dbt_cache_guest_rip_at_boundary(&v->cache, (uint64_t)g[REG_RIP]);
    if (at) {
        state_from_frame(v, g, at);
        v->smc_retry = 1;
        leave_to_dispatcher(v, g);
    }
}

/* A store to one of the guest's page tables (traced by the shadow MMU): the emulation core
 * performs it, which zaps what it changes; then adaptive translation may turn the
 * instruction into a store callout. A store in the middle of an inline sequence, or one the
 * core does not cover, runs natively once the table stops being traced; the same one again at
 * once is a loop (it writes a table it is translated through): an error naming it. */
static void on_table_write(struct dbt_vcpu *v, greg_t *g, uint64_t gpa)
{
    uint64_t at = dbt_cache_guest_rip_at_boundary(&v->cache, (uint64_t)g[REG_RIP]);
    struct x86_decoded_insn insn;
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    if (at) {
        state_from_frame(v, g, at);
        struct emu_ctx ec = dbt_emu_ctx(v);
        uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH];
        uint32_t error;
        unsigned n = emu_fetch(&ec, at, bytes, sizeof(bytes), &error);
        if (n && x86_decode(&v->decoder, bytes, n, at, &insn) == 0)
            emu_execute_store(&ec, &insn, &res);
    }
    if (res.status == EMU_UNHANDLED) {
        if (v->paging.table_write_rip != (at ? at : 1)) {
            v->paging.table_write_rip = at ? at : 1;
            shadow_mmu_untrace(v->shadow, gpa & ~0xFFFULL);
            return; /* the store retries natively */
        }
        char text[96] = "(inside a translated sequence)";
        if (at)
            x86_format(&insn, text, sizeof(text));
        dbt_set_exit(v, VM_EXIT_INTERNAL_ERROR);
        v->exit->internal.suberror = VM_INTERNAL_EMULATION;
        snprintf(v->exit->internal.message, sizeof(v->exit->internal.message),
                 "store to a page table by an instruction vmlab does not emulate: %s", text);
        leave_to_dispatcher(v, g);
        return;
    }
    v->paging.table_write_rip = 0;
    v->stats.table_stores_emulated++;
    if (res.status == EMU_EXCEPTION) {
        if (res.vector == 14)
            v->state.cr2 = res.cr2;
        dbt_deliver(v, EMU_EVENT_EXCEPTION, res.vector, res.has_error_code, res.error_code);
    } else {
        dbt_adaptive_note(v, at);
    }
    leave_to_dispatcher(v, g);
}

/* A page fault of translated code in the window: the shadow MMU says what it was. */
static void on_page_fault(struct dbt_vcpu *v, greg_t *g, uint64_t rip, uint64_t addr, uint32_t err)
{
    struct shadow_fault f;
    shadow_mmu_fault(v->shadow, addr, (err & 2) ? MMU_WRITE : MMU_READ, &f);
    switch (f.kind) {
    case SHADOW_RETRY: /* a hidden page fault: the access re-executes */
        return;
    case SHADOW_CODE_WRITE:
        on_code_write(v, g);
        return;
    case SHADOW_TABLE_WRITE:
        on_table_write(v, g, f.gpa);
        return;
    default:
        break;
    }
    state_from_frame(v, g, rip);
    switch (f.kind) {
    case SHADOW_GUEST_PF:
        v->state.cr2 = addr;
        dbt_deliver(v, EMU_EVENT_EXCEPTION, 14, true, f.error_code);
        break;
    case SHADOW_MMIO:
        on_mmio(v, rip, f.gpa);
        break;
    case SHADOW_VE: /* a convertible second-level violation: #VE, a fault (SDM 3C 25.5.7) */
        dbt_deliver(v, EMU_EVENT_EXCEPTION, 20, false, 0);
        break;
    case SHADOW_SLP_EXIT: /* the VMM's: the instruction runs again once it returns */
        dbt_set_exit(v, VM_EXIT_SLP_VIOLATION);
        v->exit->slp.gpa = f.gpa;
        v->exit->slp.gla = addr;
        v->exit->slp.gla_valid = 1;
        v->exit->slp.access = f.slp_access;
        break;
    default: /* a mapping the window cannot hold, or the host refused one */
        dbt_set_exit(v, VM_EXIT_INTERNAL_ERROR);
        v->exit->internal.suberror = VM_INTERNAL_SHADOW;
        shadow_fault_describe(&f, v->exit->internal.message, sizeof(v->exit->internal.message));
        break;
    }
    leave_to_dispatcher(v, g);
}

static void dbt_signal_handler(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    struct dbt_vcpu *v = dbt_current;
    if (sig == VMLAB_SIG_KICK) {
        if (v)
            on_kick(v, g);
        return;
    }
    uint64_t addr = (uint64_t)(uintptr_t)si->si_addr;
    if (v && sig == SIGSEGV && on_table_fault(v, g, addr))
        return;
    uint64_t host_rip = (uint64_t)g[REG_RIP];
    uint64_t rip = v && v->in_guest ? dbt_cache_guest_rip_of(&v->cache, host_rip) : 0;
    if (!rip) { /* not the guest's fault: a host bug takes the previous action */
        if (v)
            sigaction(sig, &v->old_actions[signal_slot(sig)], NULL);
        else
            signal(sig, SIG_DFL);
        return;
    }
    state_from_frame(v, g, rip);
    unsigned trapno = (unsigned)g[REG_TRAPNO];
    uint32_t err = (uint32_t)g[REG_ERR];
    if (sig == SIGSEGV && trapno == 14) {
        on_page_fault(v, g, rip, addr, err);
        return;
    }
    if (sig == SIGSEGV) {
        dbt_deliver(v, EMU_EVENT_EXCEPTION, trapno == 12 ? 12 : 13, true, err);
    } else if (sig == SIGFPE) {
        dbt_deliver(v, EMU_EVENT_EXCEPTION, trapno == 16 ? 16 : trapno == 19 ? 19 : 0, false, 0);
    } else if (sig == SIGBUS && trapno == 17) {
        dbt_deliver(v, EMU_EVENT_EXCEPTION, 17, true, 0);
    } else if (sig == SIGTRAP) {
        dbt_deliver(v, EMU_EVENT_TRAP, 1, false, 0);
    } else if (sig == SIGILL) {
        dbt_deliver(v, EMU_EVENT_EXCEPTION, 6, false, 0);
    } else {
        v->state.cr2 = addr;
        dbt_deliver(v, EMU_EVENT_EXCEPTION, 14, true, 0);
    }
    leave_to_dispatcher(v, g);
}

int dbt_signals_install(struct dbt_vcpu *v)
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
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, VMLAB_SIG_KICK); /* a kick never interrupts the fault handler */
    for (int i = 0; i < DBT_NSIGNALS; i++) {
        int sig = i < DBT_NSIGNALS - 1 ? dbt_signals[i] : VMLAB_SIG_KICK;
        /* Delivering a guest exception from this handler writes the guest's stack, which may
         * be a write-protected page holding translated code: that SIGSEGV must reach the
         * handler again (self-modifying code: unprotect, go on) instead of killing the
         * process, as a signal blocked during its own handler does. */
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | (sig == SIGSEGV ? SA_NODEFER : 0);
        if (sigaction(sig, &sa, &v->old_actions[i]) < 0)
            return -errno;
    }
    return 0;
}

void dbt_signals_restore(struct dbt_vcpu *v)
{
    for (int i = 0; i < DBT_NSIGNALS; i++)
        sigaction(i < DBT_NSIGNALS - 1 ? dbt_signals[i] : VMLAB_SIG_KICK, &v->old_actions[i], NULL);
    sigaltstack(&v->old_altstack, NULL);
}
