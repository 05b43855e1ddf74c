/* trap_emulate.h - internals shared by the trap_emulate backend's files. */
#ifndef VMLAB_TRAP_EMULATE_H
#define VMLAB_TRAP_EMULATE_H

#include <asm/processor-flags.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "emu/emu.h"
#include "mmu/shadow_mmu.h"
#include "vmm/backend.h"
#include "emu/emu_mmio.h"

/* The signal alternate stack is aligned to its size so that the assembly prologue can find
 * this header from RSP alone (RSP & ~(SIZE-1)) without touching thread-local storage: the
 * guest may have changed the FS base (WRFSBASE runs unprivileged when the host kernel enabled
 * CR4.FSGSBASE), and the host's TLS and stack protector live behind FS. */
#define TRAP_ALTSTACK_SIZE (256 * 1024)

struct trap_vcpu;

/* What the fast path of trap_entry.S needs to emulate a guest CLI or STI (and RDTSC: the
 * header's tsc_offset below) without any C code
 * (C needs the host's FS base first): where the virtual IF and friends live, and whether
 * nothing else must see the instruction. trap_fast_update() keeps it; offsets in the
 * comments are from the header's start (static asserts in trap_handler.c). */
struct trap_fast {
    uint64_t *rflags;       /* 32: &vcpu->state.rflags (the virtual IF is bit 9) */
    uint64_t *shadow_rip;   /* 40: &vcpu->shadow_rip */
    uint64_t *cli_count;    /* 48: &vcpu->common.stats.emulated[EMU_CLASS_CLI] */
    uint64_t *sti_count;    /* 56: ... [EMU_CLASS_STI] */
    bool *interrupt_shadow; /* 64: &vcpu->state.interrupt_shadow */
    uint8_t cli_ok;         /* 72: in the guest; no trace, no single step of ours */
    uint8_t sti_ok;         /* 73: cli_ok, and no interrupt window awaited */
    uint16_t host_cs;       /* 74: the host's 64-bit code selector */
};

struct trap_altstack_header {
    uint64_t host_fs_base; /* offset 0: the vCPU thread's own FS base */
    uint8_t fsgsbase;      /* offset 8: RDFSBASE/WRFSBASE usable (AT_HWCAP2) */
    uint8_t restore_fs;    /* offset 9: epilogue writes fs_to_restore */
    uint8_t direct_return; /* offset 10: resume without rt_sigreturn (trap_entry.S) */
    uint8_t pad;
    int32_t kick_signal;    /* offset 12: VMLAB_SIG_KICK (not an assembler constant) */
    uint64_t fs_to_restore; /* offset 16 */
    struct trap_vcpu *vcpu; /* offset 24 */
    struct trap_fast fast;  /* offset 32 */
    /* offset 80: RFLAGS.NT/ID the resumed context must have. rt_sigreturn restores AC, DF, TF
     * and the arithmetic flags from the signal context but keeps NT and ID from the handler's
     * own RFLAGS (Linux FIX_EFLAGS, arch/x86/kernel/signal.c): the prologue clears them for
     * host code, the epilogue sets these before returning (the direct return's IRETQ loads
     * them from the signal context instead). */
    uint64_t sticky_flags;
    /* The fast path's RDTSC (trap_entry.S): the virtual TSC is the raw CLOCK_MONOTONIC system
     * call's nanoseconds + *tsc_offset, as emu_virtual_tsc() computes it. Armed with cli_ok
     * (and no STI shadow pending). */
    int64_t *tsc_offset;   /* 88: &vcpu->state.tsc_offset */
    uint64_t *rdtsc_count; /* 96: &vcpu->common.stats.emulated[EMU_CLASS_RDTSC] */
    uint64_t fast_traps;   /* 104: instructions the fast path emulated (tests, trap_floor) */
};
#define TRAP_STICKY_FLAGS (X86_EFLAGS_NT | X86_EFLAGS_ID)

/* Register image loaded by trap_guest_enter (offsets used by trap_entry.S). */
struct trap_guest_regs {
    uint64_t gpr[16];      /* 0: ModRM order, gpr[4] (RSP) goes into the IRET frame */
    uint64_t rip;          /* 128 */
    uint64_t rflags;       /* 136: native RFLAGS (IF always 1 at CPL 3) */
    uint64_t fs_base;      /* 144 */
    uint64_t gs_base;      /* 152 */
    uint64_t use_fsgsbase; /* 160 */
    uint64_t xsave_mask;   /* 168: XSAVE components kept for the guest (EDX:EAX) */
};

/* What the host lets trap_emulate catch. Probed once per process, in child processes (a probe
 * that goes wrong must not take vmlab down). */
struct trap_host_caps {
    bool cpuid_faulting; /* ARCH_SET_CPUID works and CPUID then faults */
    bool rdtsc_faulting; /* PR_SET_TSC(PR_TSC_SIGSEGV) really makes RDTSC fault */
    bool umip;           /* CPU reports UMIP */
    int umip_sgdt; /* SGDT at CPL 3: 0 runs (real GDTR), 1 kernel emulates (dummy), 2 SIGSEGV */
    bool fsgsbase; /* kernel enabled FSGSBASE for user space */
    bool syscall_user_dispatch;
    bool sysenter_ud;      /* SYSENTER in 64-bit mode raises #UD (AMD); else it enters the kernel */
    bool int1_rip_at_insn; /* INT1's SIGTRAP reports the INT1 itself, not the next RIP */
    char vendor[13];
};

const struct trap_host_caps *trap_host_caps(void); /* probes on first call */
/* What trap_emulate saves of the guest's extended state (probed once: CPUID leaf 0xD and
 * XGETBV, SDM vol. 1 13.2-13.4). */
struct trap_xsave_layout {
    uint64_t mask; /* XCR0 user components, AMX tile data excluded (needs a permission) */
    uint32_t size; /* bytes of the standard-format XSAVE area for mask */
};
const struct trap_xsave_layout *trap_xsave_layout(void);
/* Install the guards that keep guest system calls away from the host kernel: Syscall User
 * Dispatch for this thread (x86-64 SYSCALL from the guest window -> SIGSYS, RAX preserved) and
 * a process-wide seccomp filter (32-bit entry points INT 0x80 / SYSENTER, and any syscall from
 * the guest window if SUD is missing -> SIGSYS). */
int trap_guards_install(uint8_t *sud_selector);
void trap_guards_remove_thread(void);
/* CPUID/RDTSC faulting for the calling thread. */
void trap_faulting_set(bool cpuid, bool rdtsc);

enum trap_pending { TRAP_PENDING_NONE, TRAP_PENDING_IN, TRAP_PENDING_MMIO, TRAP_PENDING_SHUTDOWN };

/* Decoded instructions that trapped, by RIP (trap_handler.c decode_cached). */
#define TRAP_DECODED_SLOTS 8
struct trap_decoded_slot {
    bool valid;
    struct x86_decoded_insn insn;
};

struct trap_vcpu {
    struct vcpu common;
    struct vcpu_state state;
    struct shadow_mmu *shadow; /* the VM's: the window is this vCPU's shadow page table */
    uint64_t table_write_rip;  /* last store to a page table left to run natively (livelock) */
    struct x86_decoder decoder;
    struct trap_guest_regs regs;
    uint64_t host_rsp;
    uint16_t host_cs; /* the host's 64-bit user code selector */
    /* XSAVE image of the guest's extended state (every user component the host enabled in
     * XCR0: the guest runs natively and can touch all of them, whatever its virtual XCR0),
     * 64-byte aligned, trap_xsave_layout()->size bytes. */
    uint8_t *guest_xsave;
    /* 1 from inside trap_guest_enter (trap_entry.S) until the handler leaves the guest. */
    volatile int in_guest;
    struct vm_exit *exit;
    enum trap_pending pending;
    struct x86_decoded_insn pending_insn;
    struct emu_io pending_io;
    struct emu_mmio pending_mmio; /* an instruction with an MMIO operand, between exits */
    int queued_interrupt;         /* vector queued by vcpu_inject_interrupt, or -1 */
    bool window_step;             /* TF set by us to end an STI shadow */
    bool step_trap_pending;       /* the guest's TF: #DB trap after an instruction that exited */
    bool ac_step;                 /* stepping an access past the #AC a CPL-0 guest never gets */
    bool ac_step_loads_flags;     /* ... and that instruction is POPF/IRET */
    bool count_step;              /* vm_config.count_native: TF on every guest instruction */
    uint64_t step_rip;            /* count_step: RIP the guest was resumed at */
    uint64_t shadow_rip;          /* RIP right after the STI that opened the shadow */
    bool want_cpuid_faulting, want_rdtsc_faulting;
    bool faulting_active; /* faulting currently enabled on this thread */
    uint8_t *altstack;    /* TRAP_ALTSTACK_SIZE, aligned to it; header at its base */
    stack_t old_altstack;
    struct sigaction old_actions[8];
    uint8_t sud_selector; /* Syscall User Dispatch selector byte (must stay mapped) */
    bool fast_path;       /* VMLAB_TRAP fast_path: CLI/STI/RDTSC in trap_entry.S */
    struct trap_decoded_slot decoded[TRAP_DECODED_SLOTS];
};

/* trap_entry.S */
void trap_guest_enter(struct trap_guest_regs *regs, uint64_t *host_rsp_slot, void *guest_xsave,
                      volatile int *in_guest);
void trap_guest_exit_landing(void);
void trap_signal_entry(int sig, siginfo_t *info, void *uc);
extern const char trap_guest_enter_iret[], trap_guest_enter_end[];
extern const char trap_tail_start[], trap_tail_end[], trap_tail_kick[];

/* trap_handler.c */
int trap_signal_handler_c(int sig, siginfo_t *info, void *uc, struct trap_altstack_header *hdr);
/* 1 if the pending instruction needs another exit (filled into *exit), else 0. */
int trap_complete_pending(struct trap_vcpu *v, struct vm_exit *exit);
/* VMLAB_TRAP: comma-separated fast_path=on|off (CLI/STI emulated in trap_entry.S) and
 * direct_return=on|off (resume without rt_sigreturn), both on by default, so that the
 * benchmark can measure each (bench/bench_trap_floor.c). 0, or -EINVAL with a message. */
int trap_options_parse(const char *text, bool *fast_path, bool *direct_return, char *err,
                       size_t err_size);
/* Arm (the guest is about to run, or resumes) or disarm (it leaves) the fast path. */
void trap_fast_update(struct trap_vcpu *v, bool guest_runs);
int trap_signal_numbers(const int **sigs); /* the signals the backend handles */
/* The RFLAGS image the guest runs with: its native bits, IF = 1, TF for a step. */
uint64_t trap_native_rflags(const struct trap_vcpu *v);
/* Deliver the #DB trap of the guest's single step (DR6.BS). 1 = shutdown exit (only from the
 * signal handler; vcpu_run turns it into TRAP_PENDING_SHUTDOWN). */
int trap_deliver_step_trap(struct trap_vcpu *v);

#endif
