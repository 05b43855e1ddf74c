/* backend.h - the guest-execution interface: one ops table per backend (like QEMU's
 * AccelOpsClass), vm and vcpu handles, and the exit record of vm_exit.h (like struct kvm_run).
 *
 * A backend embeds struct vm / struct vcpu as the FIRST member of its own structs and casts.
 * The VMM (vmm/machine.c) owns guest memory, devices and the run loop; a backend only runs the
 * guest until something needs the VMM. Backends: trap_emulate, dbt, vtx (backends/...).
 *
 * Errors: every op returns 0 or a negative errno and never prints or exits; guest faults are
 * exits, not errors.
 */
#ifndef VMLAB_BACKEND_H
#define VMLAB_BACKEND_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../emu/vcpu_state.h"
#include "guest_memory.h"
#include "vcpu_stats.h"
#include "vm_exit.h"

/* The signal the VMM sends to a vCPU thread to make vcpu_run return VM_EXIT_INTR (timer tick,
 * deadline). Each backend installs its own handler for it around vcpu_run. */
#define VMLAB_SIG_KICK (SIGRTMIN + 4)

struct backend_ops;

struct vm_config {
    struct guest_memory *mem; /* created by the VMM with the backend's memory_flags */
    bool trace;               /* fill vcpu->trace */
    bool trap_cpuid;          /* trap_emulate: use CPUID faulting where the host has it */
    bool trap_rdtsc;          /* trap_emulate: use PR_SET_TSC where the host honours it */
    /* trap_emulate: single-step the guest (TF) and count, per class, the sensitive
     * instructions that ran natively without trapping (vcpu_stats.native; `vmlab trace
     * --expect-trap`). Each guest instruction then costs a signal: for diagnosis only. */
    bool count_native;
    /* trap_emulate, dbt: the shadow MMU's root cache (mmu/shadow_mmu.h): how many address
     * spaces it keeps, 0 = rebuild on every CR3 switch; unset: SHADOW_DEFAULT_ROOTS. */
    bool shadow_roots_set;
    unsigned shadow_roots;
};

struct vm {
    const struct backend_ops *ops;
    struct vm_config config;
};

struct vcpu {
    struct vm *vm;
    struct vcpu_stats stats;
    struct trace_ring *trace; /* NULL unless config.trace; allocated by the VMM */
    /* Set by the VMM: exit with VM_EXIT_IRQ_WINDOW_OPEN once the guest can take an
     * interrupt (KVM's request_interrupt_window). */
    bool request_interrupt_window;
    /* Set asynchronously (kick signal) - the backend leaves vcpu_run with VM_EXIT_INTR. */
    volatile sig_atomic_t kick_pending;
};

struct backend_ops {
    const char *name;      /* "trap_emulate", "dbt", "vtx" */
    const char *summary;   /* one line: the mechanism */
    unsigned memory_flags; /* guest_memory_create() flags this backend needs */

    /* Mandatory. 0 if usable on this host; else -errno and a one-line reason
     * ("/dev/kvm not present"). */
    int (*probe)(char *reason, size_t size);
    /* Optional. Host capabilities that change what this backend can catch, one per line
     * ("CPUID: traps (ARCH_SET_CPUID)"). */
    void (*describe_host)(char *buf, size_t size);
    /* Optional. Expected-outcome conditions this backend satisfies on this host, e.g.
     * "cpuid_traps". Returns true if the named condition holds. */
    bool (*host_has)(const char *condition);

    int (*vm_create)(const struct vm_config *config, struct vm **out);     /* mandatory */
    void (*vm_destroy)(struct vm *vm);                                     /* mandatory */
    int (*vcpu_create)(struct vm *vm, struct vcpu **out);                  /* mandatory */
    void (*vcpu_destroy)(struct vcpu *vcpu);                               /* mandatory */
    int (*vcpu_get_state)(struct vcpu *vcpu, struct vcpu_state *out);      /* mandatory */
    int (*vcpu_set_state)(struct vcpu *vcpu, const struct vcpu_state *in); /* mandatory */
    /* Mandatory. Run until an exit; 0 with *exit filled, or -errno on a host error. An IN exit
     * is completed on the next call with the data the VMM left in exit->io.data. */
    int (*vcpu_run)(struct vcpu *vcpu, struct vm_exit *exit);
    /* Mandatory. Queue external interrupt `vector` for delivery at the start of the next
     * vcpu_run, after any pending I/O or MMIO instruction completed (KVM_INTERRUPT semantics);
     * -EBUSY if the guest cannot take it now (virtual IF clear or interrupt shadow). */
    int (*vcpu_inject_interrupt)(struct vcpu *vcpu, uint8_t vector);
    /* Optional. Backend-specific statistics: emit(ctx, name, value, unit) per counter. */
    int (*vcpu_stats)(struct vcpu *vcpu,
                      void (*emit)(void *ctx, const char *name, uint64_t value, const char *unit),
                      void *ctx);
    /* Optional. Dirty-page log of RAM since the last call (one bit per 4 KiB page, bit i =
     * page GUEST_RAM_BASE + i*4096); -EOPNOTSUPP if the backend cannot log. */
    int (*vm_get_dirty_log)(struct vm *vm, uint64_t *bitmap, size_t bitmap_words);
    /* Optional. Enable dirty logging (must precede vm_get_dirty_log). */
    int (*vm_enable_dirty_log)(struct vm *vm, bool on);
    /* Optional. Second-level permission of one guest-physical RAM page (enum
     * vm_slp_permission); a violation is a VM_EXIT_SLP_VIOLATION, or with `convertible` (where
     * the backend can) a #VE delivered to the guest. -EINVAL outside RAM, -EOPNOTSUPP if the
     * backend has no second-level permissions. */
    int (*vm_set_slp)(struct vm *vm, uint64_t gpa, unsigned permission, bool convertible);
    /* Optional. Guest-physical address of the #VE information area (Intel SDM vol. 3C
     * 25.5.7.2), 0 for none; -EOPNOTSUPP where #VE cannot be delivered. */
    int (*vcpu_set_ve_info)(struct vcpu *vcpu, uint64_t gpa);
};

/* Registry of every backend compiled in (all three are always built). */
const struct backend_ops *const *backend_list(void); /* NULL-terminated */
const struct backend_ops *backend_find(const char *name);
/* -EINVAL if a mandatory op is missing (checked once, like QEMU's accel ops). */
int backend_check_ops(const struct backend_ops *ops);

extern const struct backend_ops trap_emulate_backend_ops;
extern const struct backend_ops dbt_backend_ops;
extern const struct backend_ops vtx_backend_ops;

/* Convenience wrappers used by the VMM, tests and benches. */
static inline int vcpu_run(struct vcpu *vcpu, struct vm_exit *exit)
{
    return vcpu->vm->ops->vcpu_run(vcpu, exit);
}

#endif
