/* trap_handler.c - the signal handler of trap_emulate: decode at the faulting RIP, emulate on
 * the virtual CPU, then resume the guest or leave it for the VMM.
 *
 * Runs on the vCPU thread's alternate signal stack with every backend signal blocked. It
 * records and redirects only: no stdio, no allocation; guest memory is reached only through
 * the bounds-checked guest_ram_* helpers. See trap_emulate.c for the overall mechanism.
 */
#define _GNU_SOURCE
#include <asm/processor-flags.h>
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "mmu/page_walk.h"
#include "trap_emulate.h"
#include "vmm/emu_exit.h"
#include "vmm/guest_layout.h"
#include "vmm/trace_record.h"

#ifndef SYS_USER_DISPATCH
#define SYS_USER_DISPATCH 2
#endif
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

/* x86 exception vectors (Intel SDM vol. 3A, table 6-1) as the kernel reports them in
 * uc_mcontext.gregs[REG_TRAPNO]. */
enum {
    VEC_DE = 0,
    VEC_DB = 1,
    VEC_BP = 3,
    VEC_UD = 6,
    VEC_DF = 8,
    VEC_NP = 11,
    VEC_SS = 12,
    VEC_GP = 13,
    VEC_PF = 14,
    VEC_MF = 16,
    VEC_AC = 17,
    VEC_XM = 19,
    VEC_VE = 20,
};

/* RFLAGS bits that live in the real register while the guest runs natively (a POPF at CPL 3
 * changes all of them, SDM vol. 2B POPF); IF and IOPL are virtual. TF is the guest's too,
 * except while we single-step an STI shadow (window_step). */
#define NATIVE_FLAGS                                                                               \
    (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF |               \
     X86_EFLAGS_DF | X86_EFLAGS_OF | X86_EFLAGS_AC | X86_EFLAGS_NT | X86_EFLAGS_ID)
#define DR6_BS (1u << 14) /* single step (SDM vol. 3B 18.2.3) */

static const int handled_signals[] = {SIGSEGV, SIGILL, SIGTRAP, SIGFPE, SIGBUS, SIGSYS, 0};

int trap_signal_numbers(const int **sigs)
{
    *sigs = handled_signals;
    return 6;
}

/* ucontext register slot of each GPR, in ModRM order. */
static const int uc_gpr_slot[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                    REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                    REG_R12, REG_R13, REG_R14, REG_R15};

static uint64_t read_gs_base(void)
{
    uint64_t v;
    __asm__ volatile("rdgsbase %0" : "=r"(v));
    return v;
}

static void write_gs_base(uint64_t v)
{
    __asm__ volatile("wrgsbase %0" ::"r"(v));
}

static void state_from_uc(struct trap_vcpu *v, const ucontext_t *uc,
                          const struct trap_altstack_header *hdr)
{
    const greg_t *g = uc->uc_mcontext.gregs;
    for (int i = 0; i < 16; i++)
        v->state.gpr[i] = (uint64_t)g[uc_gpr_slot[i]];
    v->state.rip = (uint64_t)g[REG_RIP];
    /* TF is ours while we step an STI shadow or count instructions (the guest's own TF then
     * stays in the virtual RFLAGS) */
    uint64_t native = NATIVE_FLAGS | (v->window_step || v->count_step ? 0 : X86_EFLAGS_TF);
    if (v->ac_step) /* AC and TF are ours while an access steps past its #AC */
        native &= ~(uint64_t)(X86_EFLAGS_AC | X86_EFLAGS_TF);
    v->state.rflags = ((uint64_t)g[REG_EFL] & native) | (v->state.rflags & ~native);
    if (hdr->fsgsbase) {
        v->state.fs.base = hdr->fs_to_restore; /* the interrupted (guest) FS base */
        v->state.gs.base = read_gs_base();
    }
    /* The STI shadow lasts one instruction: gone once the guest moved past it. */
    if (v->state.interrupt_shadow && v->state.rip != v->shadow_rip)
        v->state.interrupt_shadow = false;
}

uint64_t trap_native_rflags(const struct trap_vcpu *v)
{
    uint64_t native = (v->state.rflags & NATIVE_FLAGS) | X86_EFLAGS_IF | X86_EFLAGS_FIXED;
    if ((v->state.rflags & X86_EFLAGS_TF) || v->window_step || v->count_step || v->ac_step)
        native |= X86_EFLAGS_TF;
    if (v->ac_step)
        native &= ~(uint64_t)X86_EFLAGS_AC;
    return native;
}

static void state_to_uc(struct trap_vcpu *v, ucontext_t *uc, struct trap_altstack_header *hdr)
{
    greg_t *g = uc->uc_mcontext.gregs;
    for (int i = 0; i < 16; i++)
        g[uc_gpr_slot[i]] = (greg_t)v->state.gpr[i];
    g[REG_RIP] = (greg_t)v->state.rip;
    uint64_t native = trap_native_rflags(v);
    g[REG_EFL] = (greg_t)native;
    hdr->sticky_flags = native & TRAP_STICKY_FLAGS; /* see trap_altstack_header */
    v->step_rip = v->state.rip;
    if (hdr->fsgsbase) {
        hdr->fs_to_restore = v->state.fs.base;
        hdr->restore_fs = 1;
        write_gs_base(v->state.gs.base);
    }
}

/* Leave the guest: the VMM continues after trap_guest_enter() returns. */
static void exit_to_host(struct trap_vcpu *v, ucontext_t *uc, struct trap_altstack_header *hdr)
{
    greg_t *g = uc->uc_mcontext.gregs;
    g[REG_RSP] = (greg_t)v->host_rsp;
    g[REG_RIP] = (greg_t)(uintptr_t)trap_guest_exit_landing;
    g[REG_EFL] = X86_EFLAGS_IF | X86_EFLAGS_FIXED;
    /* The guest may be in compatibility mode (a far JMP to the host's 32-bit user code
     * selector runs natively; an Intel SYSENTER comes back through the kernel's 32-bit return
     * path): host code must resume with the host's 64-bit CS. REG_CSGSFS packs CS in bits
     * 15:0 (struct sigcontext_64). */
    g[REG_CSGSFS] = (greg_t)(((uint64_t)g[REG_CSGSFS] & ~0xFFFFULL) | v->host_cs);
    v->window_step = false;
    v->ac_step = false; /* an access stepping past #AC runs again (and steps) after re-entry */
    v->in_guest = 0;
    trap_fast_update(v, false);
    hdr->restore_fs = 0;   /* keep the host's FS base */
    hdr->sticky_flags = 0; /* host code runs with NT = ID = 0 */
}

static void set_exit(struct trap_vcpu *v, uint32_t reason)
{
    struct vm_exit *e = v->exit;
    e->reason = reason;
    e->rip = v->state.rip;
}

static struct emu_ctx emu_ctx_of(struct trap_vcpu *v)
{
    struct emu_ctx ctx = {
        .state = &v->state, .mem = v->common.vm->config.mem, .mmu = shadow_mmu_hooks(v->shadow)};
    return ctx;
}

/* Deliver a guest exception through its IDT; 0 = resume the guest, 1 = shutdown exit. */
static int deliver_exception(struct trap_vcpu *v, enum emu_event_kind kind, uint8_t vector,
                             bool has_error, uint32_t error)
{
    struct emu_ctx ctx = emu_ctx_of(v);
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    trace_record_exception(v->common.trace, v->state.rip, vector, error);
    if (emu_deliver_event(&ctx, kind, vector, has_error, error, &res) == EMU_SHUTDOWN) {
        set_exit(v, VM_EXIT_SHUTDOWN);
        return 1;
    }
    v->common.stats.exceptions_delivered++;
    return 0;
}

/* Deliver the exception the core raised (CR2 for a #PF). 0 = resume, 1 = shutdown exit. */
static int deliver_result_exception(struct trap_vcpu *v, const struct emu_result *res)
{
    if (res->vector == VEC_PF)
        v->state.cr2 = res->cr2;
    return deliver_exception(v, EMU_EVENT_EXCEPTION, res->vector, res->has_error_code,
                             res->error_code);
}

int trap_deliver_step_trap(struct trap_vcpu *v)
{
    v->step_trap_pending = false;
    v->state.dr[6] |= DR6_BS;
    return deliver_exception(v, EMU_EVENT_TRAP, VEC_DB, false, 0);
}

/* Decode the instruction at the guest's RIP, fetched through the guest's page tables. 0, or
 * -EFAULT (RIP cannot be fetched), -EILSEQ. */
static int decode_at_rip(struct trap_vcpu *v, struct x86_decoded_insn *insn)
{
    struct emu_ctx ctx = emu_ctx_of(v);
    uint8_t bytes[ZYDIS_MAX_INSTRUCTION_LENGTH];
    uint32_t error;
    unsigned n = emu_fetch(&ctx, v->state.rip, bytes, sizeof(bytes), &error);
    if (n == 0)
        return -EFAULT;
    int rc = x86_decode(&v->decoder, bytes, n, v->state.rip, insn);
    return rc == -ENODATA ? -EILSEQ : rc;
}

/* The guest byte at linear address gla (through the guest's tables), or -1. */
static int guest_byte(struct trap_vcpu *v, uint64_t gla)
{
    struct emu_ctx ctx = emu_ctx_of(v);
    uint8_t b;
    uint32_t error;
    return emu_fetch(&ctx, gla, &b, 1, &error) == 1 ? b : -1;
}

/* The same bytes as `insn` at RIP, read where the guest executed them: the window maps RIP
 * as the guest's tables do (the shadow MMU), and the faulting instruction was fetched from
 * there, so its bytes are mapped. Byte by byte, in order: instruction lengths follow from the
 * bytes, so a mismatch shows within the instruction at RIP, never past it (where the next page
 * may not be mapped). */
static bool same_bytes_at_rip(uint64_t rip, const struct x86_decoded_insn *insn)
{
    const volatile uint8_t *p = (const volatile uint8_t *)(uintptr_t)rip;
    for (unsigned i = 0; i < insn->length; i++)
        if (p[i] != insn->bytes[i])
            return false;
    return true;
}

/* The same, through a small cache of decoded instructions keyed by RIP, for an instruction
 * that just faulted at RIP: a trapping instruction usually traps again (a loop, a driver's
 * polling), and a full Zydis decode (with the fetch through the guest's tables) is most of
 * what the general path costs. A hit requires the same bytes at RIP (the guest may have
 * rewritten its code or remapped the page). NULL with *rc on failure. */
static const struct x86_decoded_insn *decode_cached(struct trap_vcpu *v, int *rc)
{
    uint64_t rip = v->state.rip;
    struct trap_decoded_slot *slot = &v->decoded[(rip ^ (rip >> 6)) % TRAP_DECODED_SLOTS];
    if (slot->valid && slot->insn.rip == rip && rip >= GUEST_SPACE_BASE &&
        rip + slot->insn.length <= GUEST_SPACE_END && same_bytes_at_rip(rip, &slot->insn))
        return &slot->insn;
    slot->valid = false;
    *rc = decode_at_rip(v, &slot->insn);
    if (*rc < 0)
        return NULL;
    slot->valid = true;
    return &slot->insn;
}

/* A zeroed emulation result, but for the 4 KiB of OUT data only OUTs fill. */
static void result_init(struct emu_result *res)
{
    memset(res, 0, offsetof(struct emu_result, io.data));
    size_t tail = offsetof(struct emu_result, io.data) + sizeof(res->io.data);
    memset((char *)res + tail, 0, sizeof(*res) - tail);
}

/* Emulate a decoded sensitive instruction. Returns 1 if the guest must leave for the VMM. */
static int emulate(struct trap_vcpu *v, const struct x86_decoded_insn *insn, int sig,
                   uint32_t gp_error)
{
    struct emu_ctx ctx = emu_ctx_of(v);
    struct emu_result res;
    result_init(&res);
    v->state.interrupt_shadow = false; /* this instruction ends any earlier shadow */
    /* The guest single-steps (TF): the emulated instruction, like a native one, ends with a
     * #DB trap (SDM vol. 3B 18.3.1.4), unless it entered a handler through a gate, which
     * clears TF first. */
    bool step = (v->state.rflags & X86_EFLAGS_TF) != 0;
    emu_execute(&ctx, insn, &res);
    step = step && res.cls != EMU_CLASS_INT && res.cls != EMU_CLASS_INT3 &&
           res.cls != EMU_CLASS_SYSCALL && res.cls != EMU_CLASS_SYSENTER;
    if (res.status == EMU_UNHANDLED) {
        /* Not something we emulate: the fault was the guest's own (#GP on a non-canonical
         * address, #UD on an invalid opcode ...). Give it back to the guest. */
        if (sig == SIGILL)
            return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_UD, false, 0);
        return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_GP, true, gp_error);
    }
    v->common.stats.emulated[res.cls]++;
    if (res.status != EMU_EXCEPTION)
        trace_record_emulated(v->common.trace, insn, &res, v->state.rip);
    switch (res.status) {
    case EMU_OK:
        if (step && trap_deliver_step_trap(v))
            return 1;
        if (res.cls == EMU_CLASS_STI && v->state.interrupt_shadow)
            v->shadow_rip = v->state.rip;
        if (res.interrupts_enabled_now && v->common.request_interrupt_window) {
            if (v->state.interrupt_shadow) {
                v->window_step = true; /* single-step the shadowed instruction, then exit */
                return 0;
            }
            set_exit(v, VM_EXIT_IRQ_WINDOW_OPEN);
            return 1;
        }
        return 0;
    case EMU_EXIT_IO: {
        struct vm_exit *e = v->exit;
        v->step_trap_pending = step; /* delivered once the VMM completed it */
        set_exit(v, VM_EXIT_IO);
        emu_exit_fill_io(e, &res.io);
        if (res.io.direction != VM_IO_OUT) {
            v->pending = TRAP_PENDING_IN;
            v->pending_insn = *insn;
            v->pending_io = res.io;
        }
        return 1;
    }
    case EMU_EXIT_HLT:
        v->step_trap_pending = step;
        set_exit(v, VM_EXIT_HLT);
        v->exit->hlt.interrupts_enabled = (v->state.rflags & X86_EFLAGS_IF) != 0;
        return 1;
    case EMU_EXCEPTION:
        return deliver_result_exception(v, &res);
    case EMU_SHUTDOWN:
        set_exit(v, VM_EXIT_SHUTDOWN);
        return 1;
    default:
        return 0;
    }
}

/* The instruction at RIP touched the MMIO window: the core emulates it (emu/emu_mmio.h). */
static int handle_mmio(struct trap_vcpu *v, const struct x86_decoded_insn *insn)
{
    struct emu_ctx ctx = emu_ctx_of(v);
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    switch (emu_mmio_start(&ctx, insn, &v->pending_mmio, &res)) {
    case EMU_MMIO_ACCESS:
        set_exit(v, VM_EXIT_MMIO);
        emu_exit_fill_mmio(v->exit, &v->pending_mmio.access);
        v->pending = TRAP_PENDING_MMIO;
        return 1;
    case EMU_MMIO_EXCEPTION:
        return deliver_result_exception(v, &res);
    case EMU_MMIO_UNSUPPORTED:
        set_exit(v, VM_EXIT_INTERNAL_ERROR);
        emu_exit_fill_mmio_failure(v->exit, &v->pending_mmio);
        return 1;
    default:
        return 0;
    }
}

/* A store to one of the guest's page tables, which the shadow keeps read-only: the emulation
 * core performs it through the guest's tables and reports it, so the shadow zaps what the
 * written entries translated. An instruction the core does not cover runs natively after
 * the table stops being traced (everything derived through it is dropped); should that very
 * instruction fault on a page table again at once (it writes a table it is translated
 * through), vmlab stops with an error naming it instead of looping. */
static int emulate_table_write(struct trap_vcpu *v, uint64_t gpa)
{
    struct x86_decoded_insn insn;
    if (decode_at_rip(v, &insn) < 0) /* cannot happen: it just ran from there */
        return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_UD, false, 0);
    struct emu_ctx ctx = emu_ctx_of(v);
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    emu_execute_store(&ctx, &insn, &res);
    switch (res.status) {
    case EMU_OK:
        v->table_write_rip = 0;
        return 0;
    case EMU_EXCEPTION:
        if (res.vector == VEC_PF)
            v->state.cr2 = res.cr2;
        return deliver_exception(v, EMU_EVENT_EXCEPTION, res.vector, res.has_error_code,
                                 res.error_code);
    default:
        break;
    }
    if (v->table_write_rip != v->state.rip) {
        v->table_write_rip = v->state.rip;
        shadow_mmu_untrace(v->shadow, gpa & ~0xFFFULL);
        return 0;
    }
    set_exit(v, VM_EXIT_INTERNAL_ERROR);
    v->exit->internal.suberror = VM_INTERNAL_EMULATION;
    char text[64];
    x86_format(&insn, text, sizeof(text));
    static const char prefix[] = "store to a page table by an instruction vmlab does not "
                                 "emulate: ";
    size_t n = sizeof(prefix) - 1, m = strnlen(text, sizeof(text));
    if (m > sizeof(v->exit->internal.message) - n - 1)
        m = sizeof(v->exit->internal.message) - n - 1;
    memcpy(v->exit->internal.message, prefix, n);
    memcpy(v->exit->internal.message + n, text, m);
    v->exit->internal.message[n + m] = 0;
    return 1;
}

/* A page fault of guest code running natively in the window: the shadow MMU says whether it
 * was its own (a hidden fault: resume), the guest's (#PF), a store to a traced page table,
 * MMIO, or a mapping it cannot hold. */
static int handle_page_fault(struct trap_vcpu *v, uint64_t addr, uint32_t host_error)
{
    /* the host's error code says what the native access was (SDM vol. 3A 4.7) */
    unsigned access = (host_error & PF_ERR_W)   ? MMU_WRITE
                      : (host_error & PF_ERR_I) ? MMU_FETCH
                                                : MMU_READ;
    struct shadow_fault f;
    struct x86_decoded_insn insn;
    shadow_mmu_fault(v->shadow, addr, access, &f);
    switch (f.kind) {
    case SHADOW_RETRY:
    case SHADOW_CODE_WRITE:
        return 0;
    case SHADOW_GUEST_PF:
        v->state.cr2 = addr;
        return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_PF, true, f.error_code);
    case SHADOW_TABLE_WRITE:
        return emulate_table_write(v, f.gpa);
    case SHADOW_VE: /* a convertible second-level violation: #VE, a fault (SDM 3C 25.5.7) */
        return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_VE, false, 0);
    case SHADOW_SLP_EXIT: /* the VMM's: the instruction runs again once it returns */
        set_exit(v, VM_EXIT_SLP_VIOLATION);
        v->exit->slp.gpa = f.gpa;
        v->exit->slp.gla = addr;
        v->exit->slp.gla_valid = 1;
        v->exit->slp.access = f.slp_access;
        return 1;
    case SHADOW_MMIO:
        if (access != MMU_FETCH && decode_at_rip(v, &insn) == 0)
            return handle_mmio(v, &insn);
        /* code in MMIO space cannot be fetched: a not-present fetch fault, as before */
        v->state.cr2 = addr;
        return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_PF, true, PF_ERR_I);
    default:
        set_exit(v, VM_EXIT_INTERNAL_ERROR);
        v->exit->internal.suberror = VM_INTERNAL_SHADOW;
        shadow_fault_describe(&f, v->exit->internal.message, sizeof(v->exit->internal.message));
        return 1;
    }
}

/* SIGSYS from Syscall User Dispatch or the seccomp guard: a guest SYSCALL / INT 0x80 /
 * SYSENTER. RIP is past the 2-byte instruction. */
static int handle_sigsys(struct trap_vcpu *v, const siginfo_t *si)
{
    uint64_t after = v->state.rip;
    if (si->si_code == SYS_SECCOMP)
        v->state.gpr[X86_RAX] = (uint32_t)si->si_syscall; /* seccomp leaves -ENOSYS in RAX */
    if (guest_byte(v, after - 2) < 0 || guest_byte(v, after - 1) < 0) {
        /* SYSENTER on a CPU that accepts it in 64-bit mode (Intel): the kernel entered with a
         * RIP of its own choosing; the guest's is lost (SYSENTER saves none, SDM vol. 2B). */
        set_exit(v, VM_EXIT_INTERNAL_ERROR);
        v->exit->rip = 0;
        v->exit->internal.suberror = VM_INTERNAL_SYSENTER;
        static const char msg[] = "guest executed SYSENTER: this host CPU enters the host kernel "
                                  "and discards the guest RIP; vmlab blocked the system call";
        memcpy(v->exit->internal.message, msg, sizeof(msg));
        return 1;
    }
    v->state.rip = after - 2;
    struct x86_decoded_insn insn;
    if (decode_at_rip(v, &insn) < 0)
        return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_UD, false, 0);
    return emulate(v, &insn, SIGSYS, 0);
}

/* Count mode (vm_config.count_native): the single-step trap after a guest instruction that
 * ran natively, at CPL 3, without faulting. The instruction is the one at the RIP the guest
 * was resumed at (a trap comes after the instruction, SDM vol. 3B 18.3.1.4); if it is a
 * sensitive one, it is one that did NOT trap (PUSHF, POPF, SGDT ...: Popek and Goldberg's
 * violation, made countable). MOV SS / POP SS suppress the trap after the next instruction,
 * which then goes uncounted. */
static void count_native_step(struct trap_vcpu *v)
{
    struct x86_decoded_insn insn;
    uint64_t rip = v->state.rip;
    v->state.rip = v->step_rip;
    if (decode_at_rip(v, &insn) == 0) {
        v->common.stats.steps++;
        enum emu_class cls = x86_classify(&insn);
        if (cls != EMU_CLASS_NONE)
            v->common.stats.native[cls]++;
    }
    v->state.rip = rip;
}

/* A signal raised by guest code. Returns 1 if the guest must leave for the VMM. */
static int handle_guest_signal(struct trap_vcpu *v, int sig, siginfo_t *si, ucontext_t *uc)
{
    const greg_t *g = uc->uc_mcontext.gregs;
    unsigned trapno = (unsigned)g[REG_TRAPNO];
    uint32_t err = (uint32_t)g[REG_ERR];
    struct x86_decoded_insn insn;
    int rc;

    if (sig == VMLAB_SIG_KICK) {
        v->common.kick_pending = 1;
        set_exit(v, VM_EXIT_INTR);
        return 1;
    }
    if (((uint64_t)g[REG_CSGSFS] & 0xFFFF) != v->host_cs) {
        /* The guest runs on the host's 32-bit user code selector: a native far transfer to it
         * (far JMP/CALL/RET are sensitive but unprivileged), or an Intel SYSENTER that the
         * kernel returned from through its 32-bit path. The guest's 64-bit context is gone. */
        set_exit(v, VM_EXIT_INTERNAL_ERROR);
        v->exit->internal.suberror = VM_INTERNAL_COMPAT_MODE;
        static const char msg[] =
            "guest left 64-bit mode on the host's compatibility code segment (native far "
            "transfer, or SYSENTER on an Intel host); trap_emulate cannot resume it";
        memcpy(v->exit->internal.message, msg, sizeof(msg));
        return 1;
    }
    if (sig == SIGSYS)
        return handle_sigsys(v, si);
    if (sig == SIGTRAP) {
        if (trapno == VEC_DB && v->count_step) {
            count_native_step(v);
            if (!v->window_step && !v->ac_step && !(v->state.rflags & X86_EFLAGS_TF))
                return 0; /* only our own single step: go on with the next instruction */
        }
        if (trapno == VEC_DB && v->ac_step) {
            v->ac_step = false;
            uint64_t now = (uint64_t)g[REG_EFL];
            if (v->ac_step_loads_flags) /* the stepped POPF/IRET set AC and TF itself */
                v->state.rflags = (v->state.rflags & ~(uint64_t)(X86_EFLAGS_AC | X86_EFLAGS_TF)) |
                                  (now & (X86_EFLAGS_AC | X86_EFLAGS_TF));
            if (v->state.rflags & X86_EFLAGS_TF) /* the guest single-steps too */
                return trap_deliver_step_trap(v);
            if (!v->window_step)
                return 0;
        }
        if (trapno == VEC_DB && v->window_step) {
            v->window_step = false;
            v->state.interrupt_shadow = false;
            if (v->state.rflags & X86_EFLAGS_TF) /* the guest single-steps too */
                return trap_deliver_step_trap(v);
            if (emu_interrupts_enabled(&v->state) && v->common.request_interrupt_window) {
                set_exit(v, VM_EXIT_IRQ_WINDOW_OPEN);
                return 1;
            }
            return 0;
        }
        if (trapno == VEC_BP) {
            /* INT3 (CC) or INT 3 (CD 03): RIP is past it; emulate it as the software
             * interrupt it is so that the frame is the virtual CPU's. */
            if (guest_byte(v, v->state.rip - 1) == 0xCC)
                v->state.rip -= 1;
            else if (guest_byte(v, v->state.rip - 2) == 0xCD &&
                     guest_byte(v, v->state.rip - 1) == 0x03)
                v->state.rip -= 2;
            else
                return deliver_exception(v, EMU_EVENT_TRAP, VEC_BP, false, 0);
            if (decode_at_rip(v, &insn) < 0)
                return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_UD, false, 0);
            return emulate(v, &insn, sig, 0);
        }
        if (trapno == VEC_DB && si->si_code == TRAP_BRKPT) {
            /* INT1 (ICEBP, F1): a trap-like #DB, the frame's RIP is the next instruction (SDM
             * vol. 2A INT1). Emulated from its start, as dbt does, because some hosts report
             * the INT1's own RIP (trap_host_caps). */
            if (!trap_host_caps()->int1_rip_at_insn)
                v->state.rip -= 1;
            if (decode_at_rip(v, &insn) == 0 && insn.info.mnemonic == ZYDIS_MNEMONIC_INT1)
                return emulate(v, &insn, sig, 0);
            if (!trap_host_caps()->int1_rip_at_insn)
                v->state.rip += 1;
        }
        /* The guest's own single step (TF): a #DB trap with DR6.BS. */
        if (v->state.rflags & X86_EFLAGS_TF)
            return trap_deliver_step_trap(v);
        return deliver_exception(v, EMU_EVENT_TRAP, VEC_DB, false, 0);
    }
    if (sig == SIGFPE) {
        uint8_t vec = trapno == VEC_MF ? VEC_MF : trapno == VEC_XM ? VEC_XM : VEC_DE;
        return deliver_exception(v, EMU_EVENT_EXCEPTION, vec, false, 0);
    }
    if (sig == SIGBUS && trapno == VEC_AC && (v->state.rflags & X86_EFLAGS_AC)) {
        /* The guest set AC and made an unaligned access. It believes it runs at CPL 0, where
         * AC checks nothing (SDM vol. 3A 6.15, #AC: CPL 3 only): run this one instruction
         * again with AC clear and TF set, and put AC back at the #DB that follows. An
         * instruction that loads RFLAGS itself (POPF, IRET) keeps what it loaded. */
        v->ac_step = true;
        v->ac_step_loads_flags =
            decode_at_rip(v, &insn) == 0 &&
            (x86_classify(&insn) == EMU_CLASS_POPF || x86_classify(&insn) == EMU_CLASS_IRET);
        return 0;
    }
    if (sig == SIGBUS && trapno == VEC_AC)
        return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_AC, true, 0);

    if (sig == SIGSEGV && trapno == VEC_PF)
        return handle_page_fault(v, (uint64_t)(uintptr_t)si->si_addr, err);
    if (sig == SIGSEGV && trapno == VEC_SS)
        return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_SS, true, err);
    if (sig == SIGSEGV || sig == SIGILL) {
        /* #GP (privileged instruction, CPUID/RDTSC faulting, INT n through a DPL-0 host gate)
         * or #UD: only the instruction bytes tell which. */
        rc = 0;
        const struct x86_decoded_insn *in = decode_cached(v, &rc);
        if (rc == -EFAULT) { /* the page went away (a race with our own zapping): fetch again */
            struct shadow_fault f;
            shadow_mmu_fault(v->shadow, v->state.rip, MMU_FETCH, &f);
            if (f.kind == SHADOW_GUEST_PF) {
                v->state.cr2 = v->state.rip;
                return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_PF, true, f.error_code);
            }
            return 0;
        }
        if (!in || x86_classify(in) == EMU_CLASS_NONE) {
            if (sig == SIGILL || !in)
                return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_UD, false, 0);
            return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_GP, true, err);
        }
        return emulate(v, in, sig, err);
    }
    /* Anything else (SIGBUS on a truncated mapping ...) is a page fault of the guest. */
    v->state.cr2 = (uint64_t)(uintptr_t)si->si_addr;
    return deliver_exception(v, EMU_EVENT_EXCEPTION, VEC_PF, true, 0);
}

/* A fault in host code. CPUID/RDTSC faulting is enabled for the whole vCPU thread; should host
 * code (the vDSO's clock_gettime, a library) execute one, switch faulting off and let the
 * instruction run again natively: the next guest entry switches it back on. */
static bool host_fault_is_our_faulting(struct trap_vcpu *v, int sig, const ucontext_t *uc)
{
    if (!v || sig != SIGSEGV || !v->faulting_active)
        return false;
    const uint8_t *ip = (const uint8_t *)(uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    bool cpuid = ip[0] == 0x0F && ip[1] == 0xA2;
    bool rdtsc = ip[0] == 0x0F && (ip[1] == 0x31 || (ip[1] == 0x01 && ip[2] == 0xF9));
    if (!cpuid && !rdtsc)
        return false;
    trap_faulting_set(false, false);
    v->faulting_active = false;
    return true;
}

static void chain_to_previous(struct trap_vcpu *v, int sig)
{
    /* A genuine host fault: put the previous disposition back and return; the instruction
     * faults again and the previous handler (or the default action: core dump) takes it. */
    const int *sigs;
    int n = trap_signal_numbers(&sigs);
    for (int i = 0; i < n; i++)
        if (sigs[i] == sig) {
            if (v)
                sigaction(sig, &v->old_actions[i], NULL);
            else
                signal(sig, SIG_DFL);
        }
}

/* The fast path of trap_entry.S emulates a guest CLI or STI (one-byte opcodes FA, FB: the
 * opcode byte says it all, no decode) and RDTSC (0F 31) before any C code runs: it finds
 * everything through the altstack header. It is armed only while the guest runs and nothing
 * else must see these instructions - no trace record, no single step of ours (window_step),
 * for STI no interrupt window awaited (which STI may open), for RDTSC no STI shadow to end -
 * and does exactly what emulate() and exec_cli_sti() / emu_exec_rdtsc() would: IF, the STI
 * shadow, EDX:EAX, the statistics, RIP. RDTSC's one cost left is its clock_gettime system
 * call (the vDSO reads the TSC, which faults on this thread). */
static_assert(offsetof(struct trap_altstack_header, sticky_flags) == 80, "trap_entry.S HDR_STICKY");
static_assert(offsetof(struct trap_altstack_header, fast) == 32, "trap_entry.S offsets");
static_assert(offsetof(struct trap_altstack_header, tsc_offset) == 88, "trap_entry.S HDR_TSC");
static_assert(offsetof(struct trap_altstack_header, rdtsc_count) == 96, "trap_entry.S");
static_assert(offsetof(struct trap_altstack_header, fast_traps) == 104, "trap_entry.S");
static_assert(offsetof(struct trap_altstack_header, fast.shadow_rip) == 40, "trap_entry.S");
static_assert(offsetof(struct trap_altstack_header, fast.cli_count) == 48, "trap_entry.S");
static_assert(offsetof(struct trap_altstack_header, fast.sti_count) == 56, "trap_entry.S");
static_assert(offsetof(struct trap_altstack_header, fast.interrupt_shadow) == 64, "trap_entry.S");
static_assert(offsetof(struct trap_altstack_header, fast.cli_ok) == 72, "trap_entry.S");
static_assert(offsetof(struct trap_altstack_header, fast.sti_ok) == 73, "trap_entry.S");
static_assert(offsetof(struct trap_altstack_header, fast.host_cs) == 74, "trap_entry.S");
static_assert(offsetof(ucontext_t, uc_mcontext.gregs) == 40, "trap_entry.S ucontext offsets");
static_assert(REG_RIP == 16 && REG_EFL == 17 && REG_CSGSFS == 18 && REG_TRAPNO == 20,
              "trap_entry.S ucontext offsets");
static_assert(GUEST_SPACE_BASE == 0x40000000 && GUEST_SPACE_SIZE == 0x20000000, "trap_entry.S");

void trap_fast_update(struct trap_vcpu *v, bool guest_runs)
{
    struct trap_fast *f = &((struct trap_altstack_header *)v->altstack)->fast;
    f->rflags = &v->state.rflags;
    f->shadow_rip = &v->shadow_rip;
    f->cli_count = &v->common.stats.emulated[EMU_CLASS_CLI];
    f->sti_count = &v->common.stats.emulated[EMU_CLASS_STI];
    f->interrupt_shadow = &v->state.interrupt_shadow;
    f->host_cs = v->host_cs;
    struct trap_altstack_header *h = (struct trap_altstack_header *)v->altstack;
    h->tsc_offset = &v->state.tsc_offset;
    h->rdtsc_count = &v->common.stats.emulated[EMU_CLASS_RDTSC];
    f->cli_ok = guest_runs && v->fast_path && !v->common.trace && !v->window_step;
    f->sti_ok = f->cli_ok && !v->common.request_interrupt_window;
}

/* Returns 1 if the context now in the ucontext - the guest resuming, or the host landing
 * after an exit - may be resumed without rt_sigreturn (trap_entry.S trap_direct_return), 0
 * for an ordinary return from the handler. */
int trap_signal_handler_c(int sig, siginfo_t *si, void *ucv, struct trap_altstack_header *hdr)
{
    ucontext_t *uc = ucv;
    struct trap_vcpu *v = hdr->vcpu;
    const char *rip = (const char *)(uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    bool in_entry_code = rip >= (const char *)trap_guest_enter && rip < trap_guest_enter_end;
    bool from_guest = v && v->in_guest && !in_entry_code;
    /* An asynchronous signal interrupted the guest only if RIP is in the guest window: guest
     * code cannot execute anywhere else (a fetch outside faults first) and vmlab's code is
     * never there (trap_probe). Otherwise "leaving the guest" would resume host code on the
     * stale host stack of the last entry. */
    if (from_guest && sig == VMLAB_SIG_KICK &&
        ((uintptr_t)rip < GUEST_SPACE_BASE || (uintptr_t)rip >= GUEST_SPACE_END))
        from_guest = false;

    if (rip >= trap_tail_start && rip < trap_tail_end) {
        /* A signal on the way out of a direct return (the mask was just given back): the
         * context it interrupted is the one in the outer ucontext. A kick is taken there
         * (trap_tail_kick); anything else here is a host bug. */
        if (sig == VMLAB_SIG_KICK)
            uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)trap_tail_kick;
        else
            chain_to_previous(v, sig);
        return 0;
    }
    if (!from_guest) {
        if (sig == VMLAB_SIG_KICK) {
            if (v)
                v->common.kick_pending = 1;
            return 0;
        }
        if (v && v->in_guest && rip == trap_guest_enter_iret) {
            /* IRETQ refused the guest state (non-canonical RIP ...): cannot enter. */
            v->exit->reason = VM_EXIT_FAIL_ENTRY;
            v->exit->rip = v->state.rip;
            v->exit->fail_entry.hardware_entry_failure_reason =
                (uint64_t)uc->uc_mcontext.gregs[REG_ERR];
            exit_to_host(v, uc, hdr);
            return 0;
        }
        if (host_fault_is_our_faulting(v, sig, uc))
            return 0;
        chain_to_previous(v, sig);
        return 0;
    }
    state_from_uc(v, uc, hdr);
    int leave = handle_guest_signal(v, sig, si, uc);
    if (!leave && v->common.trace &&
        v->common.trace->head - v->common.trace->tail > TRACE_RING_SIZE - 64) {
        set_exit(v, VM_EXIT_INTR); /* let the VMM drain the trace ring: nothing is lost */
        leave = 1;
    }
    if (leave) {
        exit_to_host(v, uc, hdr);
        return hdr->direct_return;
    }
    state_to_uc(v, uc, hdr);
    trap_fast_update(v, true); /* window_step may have changed */
    return hdr->direct_return;
}

/* Finish an instruction that waited for the VMM (IN data, MMIO read or write), before
 * re-entering. 1 if it needs the VMM once more: *exit then holds the next exit. */
int trap_complete_pending(struct trap_vcpu *v, struct vm_exit *exit)
{
    struct emu_ctx ctx = emu_ctx_of(v);
    struct emu_result res;
    memset(&res, 0, sizeof(res));
    enum trap_pending what = v->pending;
    v->pending = TRAP_PENDING_NONE;
    v->exit = exit;
    switch (what) {
    case TRAP_PENDING_IN:
        emu_complete_in(&ctx, &v->pending_insn, &v->pending_io, exit->io.data, &res);
        if (res.status == EMU_EXCEPTION && deliver_result_exception(v, &res))
            v->pending = TRAP_PENDING_SHUTDOWN; /* (a #PF's CR2 names INS's destination) */
        return 0;
    case TRAP_PENDING_MMIO:
        switch (emu_mmio_continue(&ctx, &v->pending_mmio, exit->mmio.data, &res)) {
        case EMU_MMIO_ACCESS:
            memset(exit, 0, offsetof(struct vm_exit, io));
            set_exit(v, VM_EXIT_MMIO);
            emu_exit_fill_mmio(exit, &v->pending_mmio.access);
            v->pending = TRAP_PENDING_MMIO;
            return 1;
        case EMU_MMIO_EXCEPTION:
            if (deliver_result_exception(v, &res))
                v->pending = TRAP_PENDING_SHUTDOWN;
            return 0;
        default:
            return 0;
        }
    default:
        return 0;
    }
}
