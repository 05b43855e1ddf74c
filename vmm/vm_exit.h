/* vm_exit.h - one exit record for every backend, modelled on struct kvm_run.
 *
 * vcpu_run() returns when the guest needs the VMM: the reason says why and the union carries
 * what the VMM needs to act. A guest fault is an exit, never an error of the host.
 */
#ifndef VMLAB_VM_EXIT_H
#define VMLAB_VM_EXIT_H

#include <stdint.h>

enum vm_exit_reason {
    VM_EXIT_NONE,            /* not an exit: the record is empty */
    VM_EXIT_HLT,             /* guest executed HLT (rip is past it); see hlt.interrupts_enabled */
    VM_EXIT_IO,              /* port I/O the VMM must perform (KVM_EXIT_IO) */
    VM_EXIT_MMIO,            /* access to guest space that is not RAM (KVM_EXIT_MMIO) */
    VM_EXIT_EXCEPTION,       /* guest exception nobody in the guest handles */
    VM_EXIT_SHUTDOWN,        /* triple fault (KVM_EXIT_SHUTDOWN) */
    VM_EXIT_BUDGET,          /* time or instruction budget used up */
    VM_EXIT_INTR,            /* host event (timer, kick) interrupted the run: call run again */
    VM_EXIT_IRQ_WINDOW_OPEN, /* requested: the guest can now take an interrupt */
    VM_EXIT_FAIL_ENTRY,      /* the backend could not enter the guest (KVM_EXIT_FAIL_ENTRY) */
    VM_EXIT_INTERNAL_ERROR,  /* the backend cannot go on (KVM_EXIT_INTERNAL_ERROR) */
    VM_EXIT_DEBUG,           /* single step / breakpoint requested by the VMM (trace) */
    VM_EXIT_SLP_VIOLATION,   /* an access the second-level permissions forbid (an EPT violation
                                as a VMM sees it): slp.gpa, slp.gla, slp.access */
    VM_EXIT_REASON_MAX_VALUE = VM_EXIT_SLP_VIOLATION
};

#define VM_EXIT_IO_DATA_MAX 4096 /* bytes of one I/O exit (REP string I/O is chunked) */

enum vm_io_direction { VM_IO_IN = 0, VM_IO_OUT = 1 };

struct vm_exit {
    uint32_t reason; /* enum vm_exit_reason */
    uint64_t rip;    /* guest RIP at the exit (past the instruction for OUT/HLT) */
    union {
        struct {
            uint8_t direction; /* enum vm_io_direction */
            uint8_t size;      /* 1, 2 or 4 */
            uint16_t port;
            uint32_t count; /* > 1 for REP INS/OUTS; data holds count * size bytes */
            uint8_t data[VM_EXIT_IO_DATA_MAX];
        } io;
        struct {
            uint64_t gpa;
            uint8_t data[8];
            uint32_t len;
            uint8_t is_write;
        } mmio;
        struct {
            uint8_t vector;
            uint8_t has_error_code;
            uint32_t error_code;
            uint64_t cr2; /* for #PF */
        } exception;
        struct {
            uint8_t interrupts_enabled; /* virtual IF at the HLT */
        } hlt;
        struct {
            uint32_t kind; /* enum vm_budget_kind */
        } budget;
        struct {
            uint64_t hardware_entry_failure_reason;
        } fail_entry;
        struct {
            uint32_t suberror;
            char message[160]; /* one readable line */
        } internal;
        struct {
            uint64_t gpa;      /* the guest-physical address accessed */
            uint64_t gla;      /* the linear address, if gla_valid */
            uint8_t access;    /* enum vm_slp_access bits */
            uint8_t gla_valid; /* vtx: KVM does not tell a userspace VMM the linear address */
        } slp;
    };
};

/* Second-level permissions a guest can ask for (PORT_SLP_CONTROL) and the accesses that
 * violate them. */
enum vm_slp_access { VM_SLP_READ = 1, VM_SLP_WRITE = 2, VM_SLP_FETCH = 4 };
enum vm_slp_permission { VM_SLP_FULL = 0, VM_SLP_READ_ONLY = 1, VM_SLP_NO_ACCESS = 2 };

enum vm_budget_kind { VM_BUDGET_TIME = 1, VM_BUDGET_INSTRUCTIONS = 2 };

/* The internal errors vmlab documents: the ONE list. A VM_EXIT_INTERNAL_ERROR carries one of
 * these suberrors and a message that names the cause (the instruction, the errno ...); any
 * other suberror is a bug (the chaos test, tests/chaos/, fails on it). 1-4 are KVM's own
 * (linux/kvm.h, KVM_INTERNAL_ERROR_*), with the same meaning on every backend: vtx passes
 * KVM's through, the in-process backends use 1 for an instruction their emulator cannot
 * emulate, exactly as KVM does. README.md lists them for users. */
enum vm_internal_suberror {
    VM_INTERNAL_EMULATION = 1,   /* an instruction the emulator does not emulate (e.g. one
                                    touching MMIO that has no MMIO emulation): the message
                                    names it (KVM_INTERNAL_ERROR_EMULATION) */
    VM_INTERNAL_SIMUL_EX = 2,    /* KVM: exception while delivering an exception */
    VM_INTERNAL_DELIVERY_EV = 3, /* KVM: exit while delivering an event */
    VM_INTERNAL_UNEXPECTED_EXIT_REASON = 4, /* KVM: an exit reason KVM cannot handle */
    VM_INTERNAL_SYSENTER = 16,         /* trap_emulate on Intel: the guest's SYSENTER entered the
                                          host kernel, which discards the guest RIP */
    VM_INTERNAL_COMPAT_MODE = 17,      /* trap_emulate: the guest left 64-bit mode on the host's
                                          compatibility code segment (native far transfer) */
    VM_INTERNAL_IO_TOO_LARGE = 18,     /* vtx: KVM handed over more string I/O than the record */
    VM_INTERNAL_KVM_EXIT = 19,         /* vtx: a KVM exit reason vmlab does not know */
    VM_INTERNAL_TRANSLATION = 20,      /* dbt: a block could not be translated (errno named) */
    VM_INTERNAL_SEGMENT_OVERRIDE = 21, /* dbt: an FS/GS-relative instruction it does not
                                          rewrite to the guest's segment base (named) */
    VM_INTERNAL_SHADOW = 22,           /* trap_emulate, dbt: the guest uses a mapping the shadow
                                          MMU cannot hold (outside the window), or the host
                                          refused one */
    VM_INTERNAL_SUBERROR_MAX_VALUE = VM_INTERNAL_SHADOW
};

/* "emulation failure", ...: the documented meaning of a suberror, NULL if it is not one of
 * the documented ones. */
const char *vm_internal_suberror_name(uint32_t suberror);

/* "HLT", "IO", ...: the upper-case name used in messages, stats and CSV. */
const char *vm_exit_reason_name(uint32_t reason);
/* "guest halted with interrupts disabled", ...: one human-readable line for the record. */
void vm_exit_describe(const struct vm_exit *exit, char *buf, unsigned long size);

#endif
