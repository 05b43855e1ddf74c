/* trap_emulate.c - classic trap-and-emulate in a hosted (type 2) VMM, on stock Linux.
 *
 * The guest's code runs natively in ring 3 of this very process, at the addresses it was
 * linked for (guest RAM is mapped at the same host-virtual addresses). It believes it runs at
 * CPL 0. What happens on a guest CLI, step by step:
 *
 *   1. CLI at CPL 3 with IOPL 0 raises #GP (Intel SDM vol. 2A, CLI: "#GP(0) if CPL > IOPL").
 *   2. The host kernel turns #GP into SIGSEGV (si_code SI_KERNEL, trapno 13) for this thread
 *      and pushes a signal frame on our alternate signal stack (never on the guest's stack).
 *   3. trap_signal_entry (trap_entry.S) restores the host FS base, then trap_handler.c copies
 *      the guest registers out of the ucontext, decodes the instruction at RIP with Zydis and
 *      hands it to the emulation core (emu/), which clears the *virtual* IF in vcpu_state and
 *      advances RIP by 1.
 *   4. The handler writes the registers back into the ucontext and returns: rt_sigreturn
 *      resumes the guest at the next instruction. One kernel round trip per sensitive
 *      instruction: that is the cost `h` the benchmarks measure.
 *   5. If the instruction needs the VMM (OUT to the console, HLT, an unhandled exception), the
 *      handler instead rewrites the ucontext to resume *host* code (trap_guest_exit_landing on
 *      the host stack), so that vcpu_run() returns an exit record, as KVM_RUN would.
 *
 * What this cannot do, by construction (Popek & Goldberg; Robin & Irvine 2000): SGDT, SIDT,
 * SLDT, SMSW, STR, PUSHF, POPF, LAR, LSL, VERR, VERW, MOV/PUSH/POP of segment registers and far
 * transfers run at CPL 3 without faulting, so the guest sees the host's state (or, with UMIP,
 * the host kernel's dummy values) instead of its own. vmlab shows that rather than hiding it:
 * those guest tests are expected to fail here. CPUID and RDTSC trap only where the host
 * offers CPUID faulting / CR4.TSD (probed, see trap_host_caps.c).
 *
 * Guest system calls must never reach the host kernel: Syscall User Dispatch turns SYSCALL
 * from the guest window into SIGSYS, a seccomp filter catches the 32-bit entry points; the
 * handler emulates them on the virtual CPU (guest LSTAR / IDT).
 *
 * Isolation: the guest shares the host's address space. Its window is surrounded by PROT_NONE
 * guard space, but a guest that deliberately writes to a host address can corrupt vmlab; the
 * CLI therefore runs guests in a child process and reports such a death as "crashed".
 */
#define _GNU_SOURCE
#include <asm/processor-flags.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "trap_emulate.h"
#include "vmm/guest_layout.h"
#include "vmm/host_x87.h"

static int trap_probe(char *reason, size_t size)
{
    if ((uintptr_t)trap_guest_enter < GUEST_SPACE_END) {
        snprintf(reason, size,
                 "vmlab is not position independent: its code overlaps the guest "
                 "window (build with -fPIE)");
        return -ENOTSUP;
    }
    if (!trap_host_caps()->fsgsbase) {
        snprintf(reason, size,
                 "the host does not enable FSGSBASE for user space (CPU without it, or Linux "
                 "< 5.9): the guest's FS/GS-relative accesses would use the host thread's FS "
                 "base, its TLS");
        return -ENOTSUP;
    }
    if (!trap_xsave_layout()->mask) {
        snprintf(reason, size, "the host does not enable XSAVE (CPUID.1:ECX.OSXSAVE = 0)");
        return -ENOTSUP;
    }
    if (size)
        reason[0] = 0;
    return 0;
}

static const char *umip_text(int umip_sgdt)
{
    switch (umip_sgdt) {
    case 2:
        return "UMIP on, SGDT/SIDT/SLDT/SMSW/STR fault: trap_emulate emulates them";
    case 1:
        return "UMIP on, but the kernel emulates SGDT/SIDT/SLDT/SMSW/STR with dummy values "
               "(no signal): the guest sees the dummies";
    default:
        return "no UMIP: SGDT/SIDT/SLDT/SMSW/STR reveal the host's tables";
    }
}

static void trap_describe_host(char *buf, size_t size)
{
    const struct trap_host_caps *c = trap_host_caps();
    snprintf(buf, size,
             "CPU vendor %s\n"
             "CPUID: %s\n"
             "RDTSC: %s\n"
             "UMIP: %s\n"
             "SYSENTER: %s\n"
             "FS/GS base: %s\n"
             "guest SYSCALL: %s",
             c->vendor,
             c->cpuid_faulting ? "traps (CPUID faulting, arch_prctl ARCH_SET_CPUID)"
                               : "cannot trap (no CPUID faulting): guest sees the host CPU",
             c->rdtsc_faulting ? "traps (PR_SET_TSC: CR4.TSD)"
                               : "cannot trap on this host: guest reads the host TSC",
             umip_text(c->umip_sgdt),
             c->sysenter_ud ? "raises #UD in 64-bit mode: emulated"
                            : "enters the host kernel in 64-bit mode (Intel): blocked by seccomp, "
                              "guest cannot be resumed",
             c->fsgsbase ? "guest RD/WRFSBASE run natively (no #UD, whatever the virtual "
                           "CR4.FSGSBASE); host FS restored in the handler"
                         : "FSGSBASE off: trap_emulate unavailable",
             c->syscall_user_dispatch ? "Syscall User Dispatch -> emulated"
                                      : "seccomp -> emulated (RAX upper half lost)");
}

static bool trap_host_has(const char *cond)
{
    const struct trap_host_caps *c = trap_host_caps();
    if (strcmp(cond, "cpuid_traps") == 0)
        return c->cpuid_faulting;
    if (strcmp(cond, "rdtsc_traps") == 0)
        return c->rdtsc_faulting;
    if (strcmp(cond, "umip_faults") == 0)
        return c->umip_sgdt == 2;
    if (strcmp(cond, "umip_emulated") == 0)
        return c->umip_sgdt == 1;
    if (strcmp(cond, "sysenter_ud") == 0)
        return c->sysenter_ud;
    return false;
}

struct trap_vm {
    struct vm common;
    struct shadow_mmu *shadow;
};

static int trap_vm_create(const struct vm_config *config, struct vm **out)
{
    if (!config->mem || !config->mem->fixed || !config->mem->executable)
        return -EINVAL; /* native execution needs the fixed, executable window */
    struct trap_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return -ENOMEM;
    vm->common.ops = &trap_emulate_backend_ops;
    vm->common.config = *config;
    /* The window is the shadow page table: guest code runs natively at the guest-virtual
     * addresses its own page tables map (mmu/shadow_mmu.h). */
    struct shadow_config sc = {.mem = config->mem,
                               .roots = config->shadow_roots_set ? config->shadow_roots
                                                                 : SHADOW_DEFAULT_ROOTS,
                               .executable = true};
    int rc = shadow_mmu_create(&sc, &vm->shadow);
    if (rc < 0) {
        free(vm);
        return rc;
    }
    *out = &vm->common;
    return 0;
}

static void trap_vm_destroy(struct vm *vm)
{
    shadow_mmu_destroy(((struct trap_vm *)vm)->shadow);
    free(vm);
}

static int install_signal_handlers(struct trap_vcpu *v)
{
    const int *sigs;
    int n = trap_signal_numbers(&sigs);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = trap_signal_entry;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < n; i++)
        sigaddset(&sa.sa_mask, sigs[i]);
    sigaddset(&sa.sa_mask, VMLAB_SIG_KICK);
    for (int i = 0; i < n; i++)
        if (sigaction(sigs[i], &sa, &v->old_actions[i]) < 0)
            return -errno;
    if (sigaction(VMLAB_SIG_KICK, &sa, &v->old_actions[n]) < 0)
        return -errno;
    return 0;
}

static void restore_signal_handlers(struct trap_vcpu *v)
{
    const int *sigs;
    int n = trap_signal_numbers(&sigs);
    for (int i = 0; i < n; i++)
        sigaction(sigs[i], &v->old_actions[i], NULL);
    sigaction(VMLAB_SIG_KICK, &v->old_actions[n], NULL);
}

static uint64_t read_fs_base(void)
{
    uint64_t v;
    __asm__ volatile("rdfsbase %0" : "=r"(v));
    return v;
}

int trap_options_parse(const char *text, bool *fast_path, bool *direct_return, char *err,
                       size_t err_size)
{
    *fast_path = VMLAB_TRAP_FAST_PATH_DEFAULT; /* off in a lab build of emu_privileged.c */
    *direct_return = true;
    while (text && *text) {
        size_t len = strcspn(text, ",");
        bool *which = !strncmp(text, "fast_path=", 10)       ? fast_path
                      : !strncmp(text, "direct_return=", 14) ? direct_return
                                                             : NULL;
        const char *val = which ? strchr(text, '=') + 1 : NULL;
        size_t vlen = which ? len - (size_t)(val - text) : 0;
        if (which && vlen == 2 && !strncmp(val, "on", 2))
            *which = true;
        else if (which && vlen == 3 && !strncmp(val, "off", 3))
            *which = false;
        else if (len) {
            snprintf(err, err_size,
                     "VMLAB_TRAP: '%.*s' is not fast_path=on|off or direct_return=on|off", (int)len,
                     text);
            return -EINVAL;
        }
        text += len + (text[len] == ',');
    }
    return 0;
}

/* A user-space shadow stack (CET, Linux 6.6+: ARCH_SHSTK_STATUS) would not accept a return
 * from the handler that skips rt_sigreturn: the kernel pushed a restore token onto it. */
static bool shadow_stack_on(void)
{
    unsigned long features = 0;
    return syscall(SYS_arch_prctl, 0x5005 /* ARCH_SHSTK_STATUS */, &features) == 0 &&
           (features & 1);
}

static int trap_vcpu_create(struct vm *vm, struct vcpu **out)
{
    const struct trap_host_caps *caps = trap_host_caps();
    bool fast_path, direct_return;
    char why[160];
    if (trap_options_parse(getenv("VMLAB_TRAP"), &fast_path, &direct_return, why, sizeof(why)) <
        0) {
        fprintf(stderr, "vmlab: %s\n", why);
        return -EINVAL;
    }
    /* aligned_alloc wants a size that is a multiple of the alignment (C17 7.22.3.1) */
    struct trap_vcpu *v = aligned_alloc(64, (sizeof(*v) + 63) & ~(size_t)63);
    if (!v)
        return -ENOMEM;
    memset(v, 0, sizeof(*v));
    v->common.vm = vm;
    v->queued_interrupt = -1;
    v->shadow = ((struct trap_vm *)vm)->shadow;
    shadow_mmu_bind_state(v->shadow, &v->state);
    __asm__("movw %%cs, %0" : "=r"(v->host_cs));
    x86_decoder_init(&v->decoder);
    v->want_cpuid_faulting = vm->config.trap_cpuid && caps->cpuid_faulting;
    v->want_rdtsc_faulting = vm->config.trap_rdtsc && caps->rdtsc_faulting;
    v->fast_path = fast_path;
    v->count_step = vm->config.count_native;
    int rc = -ENOMEM;
    /* The guest's first extended state: an XSAVE header with XSTATE_BV = 0 makes XRSTOR load
     * every component in its initial configuration (x87 FCW 0x37F, zeroed registers), and
     * MXCSR from the image: 0x1F80, the reset value (SDM vol. 1 13.8.1, 10.2.3.1). */
    size_t xsave_size = (trap_xsave_layout()->size + 63) & ~(size_t)63;
    v->guest_xsave = aligned_alloc(64, xsave_size);
    if (!v->guest_xsave)
        goto fail;
    memset(v->guest_xsave, 0, xsave_size);
    uint32_t mxcsr = 0x1F80;
    memcpy(v->guest_xsave + 24, &mxcsr, sizeof(mxcsr));

    v->altstack = aligned_alloc(TRAP_ALTSTACK_SIZE, TRAP_ALTSTACK_SIZE);
    if (!v->altstack)
        goto fail;
    memset(v->altstack, 0, 4096);
    struct trap_altstack_header *hdr = (struct trap_altstack_header *)v->altstack;
    hdr->vcpu = v;
    hdr->fsgsbase = caps->fsgsbase;
    hdr->direct_return = direct_return && !shadow_stack_on();
    hdr->kick_signal = VMLAB_SIG_KICK;
    if (caps->fsgsbase)
        hdr->host_fs_base = read_fs_base();
    stack_t ss = {.ss_sp = v->altstack + 4096, .ss_size = TRAP_ALTSTACK_SIZE - 4096};
    if (sigaltstack(&ss, &v->old_altstack) < 0) {
        rc = -errno;
        goto fail;
    }
    rc = trap_guards_install(&v->sud_selector);
    if (rc == 0)
        rc = install_signal_handlers(v);
    if (rc < 0) {
        sigaltstack(&v->old_altstack, NULL);
        goto fail;
    }
    *out = &v->common;
    return 0;
fail:
    free(v->altstack);
    free(v->guest_xsave);
    free(v);
    return rc;
}

static void trap_vcpu_destroy(struct vcpu *vc)
{
    struct trap_vcpu *v = (struct trap_vcpu *)vc;
    if (v->faulting_active)
        trap_faulting_set(false, false);
    trap_guards_remove_thread();
    restore_signal_handlers(v);
    sigaltstack(&v->old_altstack, NULL);
    free(v->altstack);
    free(v->guest_xsave);
    free(v);
}

static int trap_vcpu_get_state(struct vcpu *vc, struct vcpu_state *out)
{
    *out = ((struct trap_vcpu *)vc)->state;
    return 0;
}

static int trap_vcpu_set_state(struct vcpu *vc, const struct vcpu_state *in)
{
    struct trap_vcpu *v = (struct trap_vcpu *)vc;
    v->state = *in;
    shadow_mmu_reset(v->shadow); /* new paging state: nothing derived from the old holds */
    return 0;
}

static int trap_vm_set_slp(struct vm *vm, uint64_t gpa, unsigned permission, bool convertible)
{
    return shadow_mmu_set_slp(((struct trap_vm *)vm)->shadow, gpa, permission, convertible);
}

static int trap_vcpu_set_ve_info(struct vcpu *vc, uint64_t gpa)
{
    return shadow_mmu_set_ve_info(((struct trap_vcpu *)vc)->shadow, gpa);
}

static int trap_vcpu_stats(struct vcpu *vc,
                           void (*emit)(void *, const char *, uint64_t, const char *), void *ctx)
{
    shadow_mmu_emit_stats(((struct trap_vcpu *)vc)->shadow, emit, ctx);
    return 0;
}

static int trap_vcpu_inject_interrupt(struct vcpu *vc, uint8_t vector)
{
    struct trap_vcpu *v = (struct trap_vcpu *)vc;
    if (!emu_interrupts_enabled(&v->state) || v->queued_interrupt >= 0)
        return -EBUSY;
    v->queued_interrupt = vector; /* delivered by the next vcpu_run, after pending I/O */
    return 0;
}

/* Deliver the queued interrupt through the guest IDT (SDM vol. 3A 6.14). */
static void deliver_queued_interrupt(struct trap_vcpu *v)
{
    if (v->queued_interrupt < 0)
        return;
    struct emu_ctx ctx = {
        .state = &v->state, .mem = v->common.vm->config.mem, .mmu = shadow_mmu_hooks(v->shadow)};
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    if (emu_deliver_event(&ctx, EMU_EVENT_EXTERNAL, (uint8_t)v->queued_interrupt, false, 0, &res) ==
        EMU_SHUTDOWN)
        v->pending = TRAP_PENDING_SHUTDOWN;
    v->queued_interrupt = -1;
}

static void load_entry_regs(struct trap_vcpu *v, bool fsgsbase)
{
    memcpy(v->regs.gpr, v->state.gpr, sizeof(v->regs.gpr));
    v->regs.rip = v->state.rip;
    v->regs.rflags = trap_native_rflags(v);
    v->step_rip = v->state.rip;
    v->regs.fs_base = v->state.fs.base;
    v->regs.gs_base = v->state.gs.base;
    v->regs.use_fsgsbase = fsgsbase;
    v->regs.xsave_mask = trap_xsave_layout()->mask;
}

static int trap_vcpu_run(struct vcpu *vc, struct vm_exit *exit)
{
    struct trap_vcpu *v = (struct trap_vcpu *)vc;
    host_x87_claim(); /* the guest entry loads the guest's whole XSAVE state, x87 included */
    shadow_mmu_set_trace(v->shadow, vc->trace);
    if (v->pending != TRAP_PENDING_NONE && v->pending != TRAP_PENDING_SHUTDOWN &&
        trap_complete_pending(v, exit))
        return 0; /* the instruction needs the VMM again (MMIO read-modify-write ...) */
    if (v->step_trap_pending && v->pending != TRAP_PENDING_SHUTDOWN) {
        v->exit = exit;
        if (trap_deliver_step_trap(v))
            v->pending = TRAP_PENDING_SHUTDOWN;
    }
    deliver_queued_interrupt(v);
    memset(exit, 0, offsetof(struct vm_exit, io));
    if (v->pending == TRAP_PENDING_SHUTDOWN) {
        v->pending = TRAP_PENDING_NONE;
        exit->reason = VM_EXIT_SHUTDOWN;
        exit->rip = v->state.rip;
        return 0;
    }
    if (vc->kick_pending) {
        exit->reason = VM_EXIT_INTR;
        exit->rip = v->state.rip;
        return 0;
    }
    if (vc->request_interrupt_window && emu_interrupts_enabled(&v->state)) {
        exit->reason = VM_EXIT_IRQ_WINDOW_OPEN;
        exit->rip = v->state.rip;
        return 0;
    }
    /* IF is set but an STI shadow still covers the next instruction: single-step it, the #DB
     * then reports the open window (SDM vol. 3A 6.8.3). */
    if (vc->request_interrupt_window && (v->state.rflags & X86_EFLAGS_IF) &&
        v->state.interrupt_shadow)
        v->window_step = true;
    if ((v->want_cpuid_faulting || v->want_rdtsc_faulting) && !v->faulting_active) {
        trap_faulting_set(v->want_cpuid_faulting, v->want_rdtsc_faulting);
        v->faulting_active = true;
    }
    v->exit = exit;
    load_entry_regs(v, trap_host_caps()->fsgsbase);
    trap_fast_update(v, true);
    trap_guest_enter(&v->regs, &v->host_rsp, v->guest_xsave, &v->in_guest);
    /* Back from the handler's exit_to_host(): v->state and *exit are filled. */
    return 0;
}

const struct backend_ops trap_emulate_backend_ops = {
    .name = "trap_emulate",
    .summary = "guest runs natively in ring 3; privileged instructions fault (SIGSEGV) and are "
               "emulated in the signal handler",
    .memory_flags = GUEST_MEMORY_FIXED | GUEST_MEMORY_EXECUTABLE,
    .probe = trap_probe,
    .describe_host = trap_describe_host,
    .host_has = trap_host_has,
    .vm_create = trap_vm_create,
    .vm_destroy = trap_vm_destroy,
    .vcpu_create = trap_vcpu_create,
    .vcpu_destroy = trap_vcpu_destroy,
    .vcpu_get_state = trap_vcpu_get_state,
    .vcpu_set_state = trap_vcpu_set_state,
    .vcpu_run = trap_vcpu_run,
    .vcpu_inject_interrupt = trap_vcpu_inject_interrupt,
    .vcpu_stats = trap_vcpu_stats,
    .vm_set_slp = trap_vm_set_slp,
    .vcpu_set_ve_info = trap_vcpu_set_ve_info,
};
