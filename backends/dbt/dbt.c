/* dbt.c - dynamic binary translation: guest code never runs where it was loaded.
 *
 * Translated code accesses guest memory at guest-virtual addresses in the fixed window, which
 * is the shadow page table the shadow MMU keeps from the guest's own tables (mmu/shadow_mmu.h)
 * and which is never executable: guest code only ever runs as its translation in the code
 * cache, so a jump out of translated code into guest RAM faults instead of running
 * untranslated code. The translator reads guest code through the guest's page tables
 * (dbt_paging.c: a block is valid only in the address space it was read in). Before a
 * guest basic block first runs, the translator (dbt_translate.c) decodes it with Zydis and
 * writes a translation into the cache (dbt_cache.c): innocuous instructions are copied byte
 * for byte, sensitive ones are rewritten. While translated code runs, the guest GPRs are the
 * host registers and the native stack is the guest's RSP in guest RAM; the entry and exit
 * stubs (dbt_stubs.c) switch between the host's and the guest's registers.
 *
 * What happens to a guest CLI:
 *   1. The dispatcher (dbt_vcpu_run, below) looks the guest RIP up in the cache's hash table;
 *      on a miss the block is translated once (the cost B the benchmarks measure).
 *   2. The translator found CLI (x86_classify: privileged) and wrote `mov qword [vif], 0`:
 *      one store to the virtual IF in the context page next to the cache, reached
 *      RIP-relative. No fault, no signal, no kernel, no change to the arithmetic flags; its
 *      cost p is a fraction of a nanosecond (dbt_inline.c: STI, PUSHF and POPF likewise).
 *
 * What happens to a guest OUT:
 *   1. The translator wrote a callout: `mov dword [callout_id], n; jmp callout_stub`, with
 *      the OUT decoded once and kept in callout record n.
 *   2. The callout stub saves the guest registers, switches to the host stack and calls
 *      dbt_callout_run() (dbt_callout.c), which runs emu_execute() - the same emulation core
 *      trap_emulate's signal handler uses - on the pre-decoded instruction.
 *   3. An OUT needs the VMM: entry returns, and vcpu_run returns VM_EXIT_IO. A CPUID, a MOV
 *      to CR3 or an SGDT needs only the virtual CPU: the stub reloads the registers and the
 *      block simply continues.
 *
 * Chaining. A direct JMP, Jcc or CALL is translated as a branch to an exit stub that names the
 * next guest RIP (stubs_apart: the stubs live in their own area at the end of the cache, so
 * hot code stays dense). When an exit is taken and the target block exists, the dispatcher
 * points the branch itself at the block, so hot loops never leave the cache. Indirect jumps
 * and calls jump through a lookup table to the target's lookup entry, and returns through a
 * return-address cache to the return point after their CALL (dbt_lookup.c); they leave only
 * on a miss, which the dispatcher fills. Optionally, hot loops become traces (dbt_trace.c).
 * Each of these techniques can be switched off (VMLAB_DBT, struct dbt_options) so that the
 * benchmarks measure what it brings (bench/bench_dbt_speed.c).
 *
 * Self-modifying code. The guest pages a block was read from are write-protected through the
 * shadow MMU. A write to one from translated code faults; the shadow MMU tells dbt_paging.c,
 * which invalidates and unchains the blocks of that page, and the store re-executes against a
 * fresh translation; a store by the emulation core (a callout, the VMM's IN data) is reported
 * to the shadow MMU and handled the same way.
 *
 * Faults and kicks. A guest fault in translated code arrives as a signal whose host RIP maps
 * back to the exact guest instruction; the exception goes through the guest IDT. The VMM's
 * kick signal (timer tick, budget) leaves translated code at the next instruction boundary
 * (at once, or at the end of the interrupted block), so vcpu_run returns VM_EXIT_INTR, and a
 * guest that loops forever ends with the budget, never a hang. Interrupts are delivered only
 * in the dispatcher, at block boundaries, when the virtual IF allows.
 */
#define _GNU_SOURCE
#include "dbt.h"
#include "mmu/page_walk.h"

#include <asm/processor-flags.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/emu_exit.h"
#include "vmm/guest_layout.h"

static int dbt_probe(char *reason, size_t size)
{
    if (size)
        reason[0] = 0;
    return 0;
}

struct dbt_vm {
    struct vm common;
    struct shadow_mmu *shadow;
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
    /* Translated code accesses memory at guest-virtual addresses: the window is the shadow
     * page table (mmu/shadow_mmu.h), never executable (code runs from the cache only). */
    struct shadow_config sc = {.mem = config->mem,
                               .roots = config->shadow_roots_set ? config->shadow_roots
                                                                 : SHADOW_DEFAULT_ROOTS,
                               .executable = false};
    int rc = shadow_mmu_create(&sc, &vm->shadow);
    if (rc < 0) {
        free(vm);
        return rc;
    }
    *out = &vm->common;
    return 0;
}

static void dbt_vm_destroy(struct vm *vm)
{
    shadow_mmu_destroy(((struct dbt_vm *)vm)->shadow);
    free(vm);
}

static uint64_t tsc(void)
{
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

bool dbt_bench_without_xstate;

/* ---- the speed techniques (dbt.h struct dbt_options) ---- */

static const struct {
    const char *name;
    size_t offset;
    bool on_by_default;
} option_table[] = {
    {"stubs_apart", offsetof(struct dbt_options, stubs_apart), true},
    {"ibl_shared", offsetof(struct dbt_options, ibl_shared), true},
    {"ret_cache", offsetof(struct dbt_options, ret_cache), true},
    {"fallthrough_checks", offsetof(struct dbt_options, fallthrough_checks), true},
    {"align_blocks", offsetof(struct dbt_options, align_blocks), false},
    {"traces", offsetof(struct dbt_options, traces), false},
    {"trace_indirect", offsetof(struct dbt_options, trace_indirect), false},
    {"huge_pages", offsetof(struct dbt_options, huge_pages), false},
};
#define OPTION_COUNT (sizeof(option_table) / sizeof(option_table[0]))

/* check_form=NAME stores enum dbt_check_form + 1, 0 being auto */
_Static_assert(DBT_CHECK_JRCXZ == 0 && DBT_CHECK_LOOP == 1 && DBT_CHECK_CARRY == 2,
               "check_form= names the forms in this order");

int dbt_options_parse(const char *text, struct dbt_options *out, char *err, size_t err_size)
{
    for (unsigned i = 0; i < OPTION_COUNT; i++)
        *(bool *)((char *)out + option_table[i].offset) = option_table[i].on_by_default;
    out->cache_offset = 0;
    out->check_form = DBT_CHECK_AUTO;
    if (!text)
        return 0;
    bool fallthrough_named = false;
    while (*text) {
        size_t len = strcspn(text, ",");
        const char *eq = memchr(text, '=', len);
        bool ok = false;
        if (eq) {
            size_t nlen = (size_t)(eq - text), vlen = len - nlen - 1;
            bool on = vlen == 2 && !strncmp(eq + 1, "on", 2);
            bool off = vlen == 3 && !strncmp(eq + 1, "off", 3);
            for (unsigned i = 0; i < OPTION_COUNT && (on || off); i++)
                if (strlen(option_table[i].name) == nlen &&
                    !strncmp(option_table[i].name, text, nlen)) {
                    *(bool *)((char *)out + option_table[i].offset) = on;
                    fallthrough_named |= option_table[i].offset ==
                                         offsetof(struct dbt_options, fallthrough_checks);
                    ok = true;
                }
            static const char *const forms[] = {"auto", "jrcxz", "loop", "adcx"};
            static const char form_name[] = "check_form";
            for (unsigned f = 0; f < 4 && nlen == sizeof(form_name) - 1 &&
                                 !strncmp(text, form_name, nlen);
                 f++)
                if (vlen == strlen(forms[f]) && !strncmp(eq + 1, forms[f], vlen)) {
                    out->check_form = (uint8_t)f; /* DBT_CHECK_AUTO, then enum dbt_check_form + 1 */
                    ok = true;
                }
            static const char offset_name[] = "cache_offset";
            if (nlen == sizeof(offset_name) - 1 && !strncmp(text, offset_name, nlen) && vlen &&
                vlen <= 4 && strspn(eq + 1, "0123456789") >= vlen) {
                unsigned value = 0;
                for (size_t k = 0; k < vlen; k++)
                    value = value * 10 + (unsigned)(eq[1 + k] - '0');
                if (value < DBT_CACHE_OFFSET_LIMIT) {
                    out->cache_offset = (uint16_t)value;
                    ok = true;
                }
            }
        }
        if (!ok && len) {
            snprintf(err, err_size,
                     "VMLAB_DBT: '%.*s' is not NAME=on|off with NAME one of stubs_apart, "
                     "ibl_shared, ret_cache, fallthrough_checks, align_blocks, traces, "
                     "trace_indirect, huge_pages, "
                     "nor cache_offset=N with N from 0 to %d, "
                     "nor check_form=auto|jrcxz|loop|adcx",
                     (int)len, text, DBT_CACHE_OFFSET_LIMIT - 1);
            return -EINVAL;
        }
        text += len + (text[len] == ',');
    }
    if (fallthrough_named && !out->fallthrough_checks && out->check_form != DBT_CHECK_AUTO &&
        out->check_form != DBT_CHECK_JRCXZ + 1) {
        snprintf(err, err_size,
                 "VMLAB_DBT: fallthrough_checks=off asks for JRCXZ checks, check_form=%s for "
                 "another form: give one of them",
                 out->check_form == DBT_CHECK_LOOP + 1 ? "loop" : "adcx");
        return -EINVAL;
    }
    if (out->check_form == DBT_CHECK_CARRY + 1 && !dbt_host_has_adx()) {
        snprintf(err, err_size,
                 "VMLAB_DBT: check_form=adcx needs ADCX (ADX: CPUID.(EAX=07H,ECX=0):EBX[19]), "
                 "which this processor does not have");
        return -EINVAL;
    }
    return 0;
}

void dbt_options_format(const struct dbt_options *o, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < OPTION_COUNT && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s=%s", i ? "," : "", option_table[i].name,
                              *(const bool *)((const char *)o + option_table[i].offset) ? "on"
                                                                                        : "off");
    static const char *const forms[] = {"auto", "jrcxz", "loop", "adcx"};
    if (n < size)
        snprintf(buf + n, size - n, ",cache_offset=%u,check_form=%s", o->cache_offset,
                 o->check_form < 4 ? forms[o->check_form] : "?");
}

/* The x87 unit of a guest that uses it - the translator saw an x87, MMX or FXSAVE/XSAVE-family
 * instruction: dbt_x87_first_use() - stays live in the thread's x87 registers across VMM
 * exits, with the lazy hand-over of vmm/host_x87.h. When vcpu_run returns, host code gets a
 * host-sane control word (FNSTCW the guest's, FLDCW 037FH: every exception masked; vmlab's host
 * code has no x87 instruction, which test_dbt_backend checks). The registers are put aside with
 * FNSAVE only when other code claims the unit (another x87-using vCPU, trap_emulate's guest
 * entry, host code about to use x87) and come back with FRSTOR on the next vcpu_run. One case
 * cannot keep them live: a pending exception the guest's control word unmasks (its status word
 * has the flag, SDM vol. 1 8.6) would make the host's FLDCW, a waiting instruction, raise it in
 * host code - those registers go aside at once (FNSAVE waits for nothing). A guest that never
 * touched the unit pays nothing. Putting the registers aside at every VMM exit cost an x87
 * guest's OUT +190 ns on an Intel Xeon (+70 on an AMD EPYC); the control word alone a few ns.
 * (XINUSE cannot tell whether a guest used the unit: on AMD its x87 bit stays set once any
 * code of the process used it.) */
static const uint16_t host_fcw = 0x037F; /* FNINIT's control word, the SysV ABI's */

static void x87_put_aside(struct host_x87_holder *holder)
{
    struct dbt_vcpu *v =
        (struct dbt_vcpu *)((char *)holder - offsetof(struct dbt_vcpu, x87_holder));
    __asm__ volatile("fnsave %0" : "=m"(v->x87)); /* also reinitializes the unit */
    v->x87_aside = true;
}

__attribute__((noinline)) static void x87_enter(struct dbt_vcpu *v)
{
    if (!v->x87_used || !v->cache.save_xstate)
        return;
    if (host_x87_holder != &v->x87_holder) {
        host_x87_claim(); /* another holder puts its registers aside */
        if (v->x87_aside)
            __asm__ volatile("frstor %0" ::"m"(v->x87));
        v->x87_aside = false;
        host_x87_holder = &v->x87_holder;
    }
    if (v->x87_cw_host) { /* the unit has the host's control word: the guest's back */
        __asm__ volatile("fldcw %0" ::"m"(v->x87_fcw));
        v->x87_cw_host = false;
    }
}

__attribute__((noinline)) static void x87_leave(struct dbt_vcpu *v)
{
    if (!v->x87_used || !v->cache.save_xstate)
        return;
    uint16_t fsw;
    __asm__ volatile("fnstcw %0\n fnstsw %1" : "=m"(v->x87_fcw), "=m"(fsw));
    if (fsw & ~v->x87_fcw & 0x3F) { /* a pending exception the guest unmasked */
        if (host_x87_holder == &v->x87_holder)
            host_x87_holder = NULL;
        x87_put_aside(&v->x87_holder);
        return;
    }
    __asm__ volatile("fldcw %0" ::"m"(host_fcw));
    v->x87_cw_host = true;
}

/* The translator met the guest's first x87/MMX instruction (before it runs): from now on the
 * x87 unit is the guest's, starting in its initial state (FNINIT: FCW 037FH, empty stack). */
__attribute__((noinline)) void dbt_x87_first_use(struct dbt_vcpu *v)
{
    v->x87_used = true;
    host_x87_claim(); /* a previous holder's registers are not this guest's */
    __asm__ volatile("fninit");
    v->x87_aside = false;
    v->x87_cw_host = false;
    if (v->cache.save_xstate)
        host_x87_holder = &v->x87_holder;
}

static int dbt_vcpu_create(struct vm *vm, struct vcpu **out)
{
    struct dbt_vcpu *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->common.vm = vm;
    v->queued_interrupt = -1;
    v->x87_holder.put_aside = x87_put_aside;
    v->stats.created_ns = emu_time_ns();
    v->stats.created_cycles = tsc();
    x86_decoder_init(&v->decoder);
    struct dbt_options opt;
    char why[256];
    if (dbt_options_parse(getenv("VMLAB_DBT"), &opt, why, sizeof(why)) < 0) {
        fprintf(stderr, "vmlab: %s\n", why);
        free(v);
        return -EINVAL;
    }
    int rc = dbt_cache_init(&v->cache, !dbt_bench_without_xstate, &opt);
    if (rc < 0) {
        free(v);
        return rc;
    }
    dbt_paging_attach(v, ((struct dbt_vm *)vm)->shadow);
    shadow_mmu_bind_state(v->shadow, &v->state);
    dbt_cache_flush(&v->cache, vm->config.mem);
    v->cache.host->callout_fn = (uint64_t)(uintptr_t)dbt_callout_run;
    v->cache.host->vcpu = (uint64_t)(uintptr_t)v;
    rc = dbt_signals_install(v);
    if (rc < 0) {
        dbt_signals_restore(v);
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
    dbt_signals_restore(v);
    if (dbt_current == v)
        dbt_current = NULL;
    if (host_x87_holder == &v->x87_holder)
        host_x87_holder = NULL; /* its registers die with it; nothing to put aside */
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
    struct dbt_vcpu *v = (struct dbt_vcpu *)vc;
    v->state = *in;
    shadow_mmu_reset(v->shadow); /* new paging state: nothing derived from the old holds */
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

/* The guest's trap flag: the instruction that starts with TF set runs alone and, once it has
 * completed, raises a single-step #DB (a trap: the saved RIP is the next instruction; DR6.BS,
 * SDM vol. 3B 18.3.1.4). An instruction that sets TF (POPF, IRETQ) therefore traps only after
 * the one that follows it, as on hardware. */
static enum dbt_emulate_result step_trap(struct dbt_vcpu *v)
{
    v->state.dr[6] |= 1ULL << 14; /* DR6.BS */
    return dbt_deliver(v, EMU_EVENT_TRAP, 1, false, 0);
}

/* Work left from the previous exit: complete an IN or MMIO read, deliver a pending single-step
 * trap, deliver an interrupt. */
static bool run_prologue(struct dbt_vcpu *v, struct vm_exit *exit)
{
    struct emu_ctx ec = dbt_emu_ctx(v);
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    bool in_fault = false;
    if (v->pending_in) {
        emu_complete_in(&ec, &v->pending_insn, &v->pending_io, exit->io.data, &res);
        v->pending_in = false;
        in_fault = res.status == EMU_EXCEPTION;
    }
    enum emu_mmio_status mmio = EMU_MMIO_DONE;
    if (v->pending_mmio) {
        mmio = emu_mmio_continue(&ec, &v->pending_mmio_access, exit->mmio.data, &res);
        v->pending_mmio = mmio == EMU_MMIO_ACCESS;
        in_fault = mmio == EMU_MMIO_EXCEPTION;
    }
    memset(exit, 0, offsetof(struct vm_exit, io));
    v->exit = exit;
    dbt_current = v;
    if (mmio == EMU_MMIO_ACCESS) { /* the MMIO instruction needs the VMM again */
        dbt_set_exit(v, VM_EXIT_MMIO);
        emu_exit_fill_mmio(exit, &v->pending_mmio_access.access);
        return false;
    }
    if (in_fault) { /* the IN's destination (or the MMIO instruction's RAM access) faulted */
        if (res.vector == 14)
            v->state.cr2 = res.cr2;
        v->step_trap_pending = false;
        if (dbt_deliver(v, EMU_EVENT_EXCEPTION, res.vector, res.has_error_code, res.error_code) ==
            DBT_EMULATE_LEAVE)
            return false;
    }
    if (v->step_trap_pending) {
        v->step_trap_pending = false;
        if (step_trap(v) == DBT_EMULATE_LEAVE)
            return false;
    }
    if (v->queued_interrupt >= 0) {
        int vec = v->queued_interrupt;
        v->queued_interrupt = -1;
        if (emu_deliver_event(&ec, EMU_EVENT_EXTERNAL, (uint8_t)vec, false, 0, &res) ==
            EMU_SHUTDOWN) {
            dbt_set_exit(v, VM_EXIT_SHUTDOWN);
            return false;
        }
    }
    return true;
}

/* After a single-stepped instruction: did it complete (no exception was delivered, and a kick
 * did not leave before it ran)? Then its #DB is due, now or at the next vcpu_run. */
static bool step_completed(const struct dbt_vcpu *v, uint64_t exceptions_before,
                           uint64_t rip_before)
{
    if (v->common.stats.exceptions_delivered != exceptions_before)
        return false;
    return !(v->exit->reason == VM_EXIT_INTR && v->state.rip == rip_before);
}

static int run_loop(struct dbt_vcpu *v, struct vm_exit *exit)
{
    struct vcpu *vc = &v->common;
    struct dbt_cache *c = &v->cache;
    void (*enter)(void) = (void (*)(void))(void *)(c->rx + c->entry);
    uint32_t chain_from = 0, chain_epoch = 0; /* chain_from: exit stub id + 1, 0 = none */
    bool last_recorded = false; /* the block that just ran was a trace's recording copy */
    bool fill_ibl = false;
    for (;;) {
        if (vc->kick_pending) {
            dbt_set_exit(v, VM_EXIT_INTR);
            return 0;
        }
        if (vc->request_interrupt_window && emu_interrupts_enabled(&v->state)) {
            dbt_set_exit(v, VM_EXIT_IRQ_WINDOW_OPEN);
            return 0;
        }
        /* The instruction in an interrupt shadow runs alone, so nothing is delivered before
         * it completes (SDM vol. 3A 6.8.3); the shadow ends with it. A single-stepped one
         * runs alone too. */
        bool shadow = v->state.interrupt_shadow;
        bool stepping = (v->state.rflags & X86_EFLAGS_TF) != 0;
        bool single = shadow || v->smc_retry || stepping;
        if (single && v->rec.active) /* not a path for a trace */
            dbt_trace_step(v, 0, false);
        bool recording = v->rec.active;
        uint64_t exceptions_before = vc->stats.exceptions_delivered, rip_before = v->state.rip;
        v->stats.smc_reexecutions += v->smc_retry != 0;
        v->state.interrupt_shadow = false;
        v->smc_retry = 0;
        int err = 0;
        /* A block first reached by an indirect branch gets its lookup entry in front */
        bool ibl_target = fill_ibl && c->epoch == chain_epoch && !single;
        struct dbt_block *b = dbt_block_get(v, v->state.rip,
                                            single      ? DBT_XLATE_SINGLE
                                            : recording ? DBT_XLATE_RECORD
                                                        : DBT_XLATE_BLOCK,
                                            ibl_target && !recording, &err);
        if (!b) {
            if (err == -EFAULT) { /* the fetch faults (not mapped, XD, not RAM): #PF */
                if (dbt_emulate_at_rip(v) == DBT_EMULATE_LEAVE)
                    return 0;
                chain_from = 0;
                fill_ibl = false;
                continue;
            }
            if (err == -ERANGE || err == -ENOMEM) { /* what the shadow MMU cannot hold */
                struct shadow_fault f = {.kind = SHADOW_HOST_ERROR, .host_errno = -err};
                if (err == -ERANGE) /* the walk again, for the message's guest-physical address */
                    shadow_mmu_fault(v->shadow, v->state.rip, MMU_FETCH, &f);
                f.gla = v->state.rip;
                dbt_set_exit(v, VM_EXIT_INTERNAL_ERROR);
                exit->internal.suberror = VM_INTERNAL_SHADOW;
                shadow_fault_describe(&f, exit->internal.message, sizeof(exit->internal.message));
                return 0;
            }
            dbt_set_exit(v, VM_EXIT_INTERNAL_ERROR);
            exit->internal.suberror = VM_INTERNAL_TRANSLATION;
            snprintf(exit->internal.message, sizeof(exit->internal.message),
                     "dbt could not translate the block at %#llx: %s",
                     (unsigned long long)v->state.rip, strerror(-err));
            return 0;
        }
        if (c->epoch == chain_epoch && !single && !recording && !last_recorded) {
            if (fill_ibl) { /* an indirect branch missed the inline lookup */
                /* a lookup entry may be written into the stub area */
                uint64_t before = c->stub_bytes;
                dbt_cache_ibl_fill(c, v->state.rip, b);
                v->stats.host_stub_bytes += c->stub_bytes - before;
                v->stats.indirect_misses++;
            }
            if (chain_from) {
                dbt_trace_chain(v, chain_from - 1, (uint32_t)(b - c->blocks));
                v->stats.chained_jumps++;
            }
        }
        dbt_state_to_ctx(v, (uint64_t)(uintptr_t)(c->rx + b->host_offset));
        c->ctx->want_window = vc->request_interrupt_window;
        c->ctx->kick = 0;
        if (c->tables_revoked) /* by the last kick (dbt_signal.c) */
            dbt_cache_restore_tables(c);
        v->in_guest = 1;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (vc->kick_pending) { /* a kick after the check above, before in_guest was set */
            v->in_guest = 0;
            continue;
        }
        enter();
        v->in_guest = 0;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        v->stats.block_exits++;
        uint64_t kind = c->ctx->exit_kind;
        chain_from = 0;
        fill_ibl = false;
        chain_epoch = c->epoch;
        last_recorded = recording;
        if (kind == DBT_EXIT_HANDLED) {
            if (recording)
                dbt_trace_step(v, 0, false);
            if (exit->reason != VM_EXIT_NONE) {
                v->step_trap_pending =
                    stepping && step_completed(v, exceptions_before, rip_before) &&
                    exit->reason != VM_EXIT_SHUTDOWN && exit->reason != VM_EXIT_INTERNAL_ERROR;
                return 0;
            }
            if (v->smc_retry) { /* the store is re-executed alone, still in the shadow if it was */
                v->state.interrupt_shadow = shadow;
                continue;
            }
        } else {
            /* A direct exit stub names itself (dbt.h struct dbt_stub); the guest can write the
             * context page, so the id is checked. */
            uint32_t id = (uint32_t)c->ctx->last_stub & ~DBT_STUB_ID;
            bool stub = kind == DBT_EXIT_CONTINUE && ((uint32_t)c->ctx->last_stub & DBT_STUB_ID) &&
                        id < c->stub_count;
            if (stub)
                c->ctx->next_rip = c->stubs[id].guest_rip;
            dbt_state_from_ctx(v);
            if (stub)
                chain_from = id + 1;
            uint32_t hot = (uint32_t)c->ctx->last_stub;
            if (kind == DBT_EXIT_CONTINUE && !stub && (hot & DBT_TRACE_HOT) && !recording)
                dbt_trace_start(v, hot & ~DBT_TRACE_HOT); /* a trace head: record what follows */
            else if (recording)
                dbt_trace_step(v, b->guest_rip,
                               kind == DBT_EXIT_CONTINUE || kind == DBT_EXIT_IBL_MISS);
            fill_ibl = kind == DBT_EXIT_IBL_MISS;
            v->state.interrupt_shadow = kind == DBT_EXIT_SHADOW;
            if (kind == DBT_EXIT_SENSITIVE && dbt_emulate_at_rip(v) == DBT_EMULATE_LEAVE) {
                v->step_trap_pending = stepping && step_completed(v, exceptions_before, rip_before);
                return 0;
            }
        }
        if (stepping && step_completed(v, exceptions_before, rip_before)) {
            chain_from = 0;
            fill_ibl = false;
            if (step_trap(v) == DBT_EMULATE_LEAVE)
                return 0;
        }
        if (vc->trace && vc->trace->head - vc->trace->tail > TRACE_RING_SIZE - 64) {
            dbt_set_exit(v, VM_EXIT_INTR); /* let the VMM drain the trace */
            return 0;
        }
    }
}

static int dbt_vcpu_run(struct vcpu *vc, struct vm_exit *exit)
{
    struct dbt_vcpu *v = (struct dbt_vcpu *)vc;
    shadow_mmu_set_trace(v->shadow, vc->trace);
    if (!run_prologue(v, exit))
        return 0;
    x87_enter(v);
    int rc = run_loop(v, exit);
    x87_leave(v);
    return rc;
}

/* KiB of the mapping at `start` mapped with huge pages (/proc/self/smaps), for huge_pages:
 * the kernel may refuse them (shmem_enabled=never: the code cache is a memfd). */
static uint64_t huge_kb(uint64_t start)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return 0;
    char line[256];
    bool in = false;
    uint64_t kb = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi, v;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
            in = lo == start;
        else if (in && (sscanf(line, "ShmemPmdMapped: %lu", &v) == 1 ||
                        sscanf(line, "FilePmdMapped: %lu", &v) == 1))
            kb += v;
    }
    fclose(f);
    return kb;
}

static int dbt_vcpu_stats(struct vcpu *vc,
                          void (*emit)(void *, const char *, uint64_t, const char *), void *ctx)
{
    struct dbt_vcpu *v = (struct dbt_vcpu *)vc;
    struct dbt_stats *s = &v->stats;
    emit(ctx, "blocks_translated", s->blocks_translated, "blocks");
    emit(ctx, "guest_insns_translated", s->guest_insns_translated, "instructions");
    emit(ctx, "guest_bytes_translated", s->guest_bytes_translated, "bytes");
    /* Code expansion: host bytes written (blocks, with their exit stubs when these are not
     * kept apart; the stub area: exit stubs kept apart, lookup entries written for blocks that
     * existed before, trace heads' counting stubs) per guest byte translated, in percent */
    emit(ctx, "host_block_bytes", s->host_block_bytes, "bytes");
    emit(ctx, "host_stub_bytes", s->host_stub_bytes, "bytes");
    uint64_t gb = s->guest_bytes_translated;
    emit(ctx, "code_expansion_pct", gb ? (s->host_block_bytes + s->host_stub_bytes) * 100 / gb : 0,
         "% of guest bytes");
    const struct dbt_options *o = &v->cache.opt;
    emit(ctx, "opt_stubs_apart", o->stubs_apart, "on/off");
    emit(ctx, "opt_ibl_shared", o->ibl_shared, "on/off");
    emit(ctx, "opt_ret_cache", o->ret_cache, "on/off");
    emit(ctx, "opt_fallthrough_checks", o->fallthrough_checks, "on/off");
    emit(ctx, "opt_check_form", o->check_form, "0 auto, 1 JRCXZ, 2 LOOP, 3 ADCX");
    emit(ctx, "check_form", v->cache.check_form, "0 JRCXZ, 1 LOOP, 2 ADCX");
    emit(ctx, "opt_align_blocks", o->align_blocks, "on/off");
    emit(ctx, "opt_traces", o->traces, "on/off");
    emit(ctx, "opt_trace_indirect", o->trace_indirect, "on/off");
    emit(ctx, "trace_heads", s->trace_heads, "heads");
    emit(ctx, "traces_built", s->traces_built, "traces");
    emit(ctx, "trace_blocks", s->trace_blocks, "blocks");
    emit(ctx, "traces_abandoned", s->traces_abandoned, "heads");
    emit(ctx, "opt_huge_pages", o->huge_pages, "on/off");
    emit(ctx, "opt_cache_offset", o->cache_offset, "bytes");
    if (o->huge_pages)
        emit(ctx, "code_cache_huge_kb", huge_kb((uint64_t)(uintptr_t)v->cache.rx), "KiB");
    /* B of this run (docs/REPORT.md): all the translator spent, translate_cycles from the TSC,
     * in ns at the TSC rate measured over this vCPU's lifetime */
    uint64_t dc = tsc() - s->created_cycles, dn = emu_time_ns() - s->created_ns;
    uint64_t tns = dc ? (uint64_t)((double)s->translate_cycles * dn / dc) : 0;
    emit(ctx, "translate_ns", tns, "ns");
    emit(ctx, "translate_cycles", s->translate_cycles, "cycles");
    /* B per block and per guest instruction translated (averages over the run) */
    uint64_t nb = s->blocks_translated, ni = s->guest_insns_translated;
    emit(ctx, "translate_ns_per_block", nb ? tns / nb : 0, "ns");
    emit(ctx, "translate_ns_per_insn", ni ? tns / ni : 0, "ns");
    emit(ctx, "translate_cycles_per_block", nb ? s->translate_cycles / nb : 0, "cycles");
    emit(ctx, "translate_cycles_per_insn", ni ? s->translate_cycles / ni : 0, "cycles");
    emit(ctx, "cache_hits", s->cache_hits, "lookups");
    emit(ctx, "block_exits", s->block_exits, "exits");
    emit(ctx, "chained_jumps", s->chained_jumps, "stubs patched");
    emit(ctx, "indirect_misses", s->indirect_misses, "misses");
    emit(ctx, "callouts", s->callouts, "instructions");
    emit(ctx, "inline_sensitive", s->inline_sensitive, "translations");
    emit(ctx, "invalidations", s->invalidations, "pages");
    emit(ctx, "invalidated_blocks", s->invalidated_blocks, "blocks");
    emit(ctx, "smc_reexecutions", s->smc_reexecutions, "instructions");
    emit(ctx, "dispatcher_emulations", s->dispatcher_emulations, "instructions");
    emit(ctx, "cache_flushes", s->cache_flushes, "flushes");
    emit(ctx, "table_stores_emulated", s->table_stores_emulated, "stores");
    emit(ctx, "adaptive_retranslations", s->adaptive_retranslations, "instructions");
    emit(ctx, "adaptive_stores", s->adaptive_stores, "stores");
    emit(ctx, "code_pages_revalidated", s->code_pages_revalidated, "pages");
    emit(ctx, "code_pages_dropped", s->code_pages_dropped, "pages");
    shadow_mmu_emit_stats(v->shadow, emit, ctx);
    return 0;
}

static int dbt_vm_set_slp(struct vm *vm, uint64_t gpa, unsigned permission, bool convertible)
{
    return shadow_mmu_set_slp(((struct dbt_vm *)vm)->shadow, gpa, permission, convertible);
}

static int dbt_vcpu_set_ve_info(struct vcpu *vc, uint64_t gpa)
{
    return shadow_mmu_set_ve_info(((struct dbt_vcpu *)vc)->shadow, gpa);
}

int dbt_block_host_code(struct vcpu *vc, uint64_t guest_rip, const uint8_t **code, size_t *len)
{
    struct dbt_vcpu *v = (struct dbt_vcpu *)vc;
    const struct dbt_block *b = dbt_cache_lookup(&v->cache, guest_rip);
    if (!b)
        return -ENOENT;
    *code = v->cache.rx + b->host_offset;
    *len = b->host_size;
    return 0;
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
    .vm_set_slp = dbt_vm_set_slp,
    .vcpu_set_ve_info = dbt_vcpu_set_ve_info,
};
