/* vm_exit.c - names and one-line descriptions of exit records. */
#include "vm_exit.h"

#include <stdio.h>

static const char *const exit_reason_names[VM_EXIT_REASON_MAX_VALUE + 1] = {
    [VM_EXIT_NONE] = "NONE",
    [VM_EXIT_HLT] = "HLT",
    [VM_EXIT_IO] = "IO",
    [VM_EXIT_MMIO] = "MMIO",
    [VM_EXIT_EXCEPTION] = "EXCEPTION",
    [VM_EXIT_SHUTDOWN] = "SHUTDOWN",
    [VM_EXIT_BUDGET] = "BUDGET",
    [VM_EXIT_INTR] = "INTR",
    [VM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
    [VM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
    [VM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
    [VM_EXIT_DEBUG] = "DEBUG",
    [VM_EXIT_SLP_VIOLATION] = "SLP_VIOLATION",
};

const char *vm_exit_reason_name(uint32_t reason)
{
    if (reason > VM_EXIT_REASON_MAX_VALUE || !exit_reason_names[reason])
        return "UNKNOWN";
    return exit_reason_names[reason];
}

static const char *const internal_suberror_names[VM_INTERNAL_SUBERROR_MAX_VALUE + 1] = {
    [VM_INTERNAL_EMULATION] = "emulation failure",
    [VM_INTERNAL_SIMUL_EX] = "exception while delivering an exception",
    [VM_INTERNAL_DELIVERY_EV] = "exit while delivering an event",
    [VM_INTERNAL_UNEXPECTED_EXIT_REASON] = "unexpected exit reason",
    [VM_INTERNAL_SYSENTER] = "SYSENTER entered the host kernel",
    [VM_INTERNAL_COMPAT_MODE] = "guest on the host's compatibility code segment",
    [VM_INTERNAL_IO_TOO_LARGE] = "string I/O larger than the exit record",
    [VM_INTERNAL_KVM_EXIT] = "unknown KVM exit reason",
    [VM_INTERNAL_TRANSLATION] = "block translation failed",
    [VM_INTERNAL_SEGMENT_OVERRIDE] = "FS/GS-relative instruction not translated",
    [VM_INTERNAL_SHADOW] = "guest mapping the shadow MMU cannot hold",
};

const char *vm_internal_suberror_name(uint32_t suberror)
{
    if (suberror > VM_INTERNAL_SUBERROR_MAX_VALUE)
        return NULL;
    return internal_suberror_names[suberror];
}

/* Mnemonics of the architectural exception vectors (Intel SDM vol. 3A, table 6-1). */
static const char *const vector_mnemonics[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF",  "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "(15)", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

static const char *vector_name(unsigned vector)
{
    if (vector < 32 && vector_mnemonics[vector])
        return vector_mnemonics[vector];
    return "interrupt";
}

void vm_exit_describe(const struct vm_exit *e, char *buf, unsigned long size)
{
    switch (e->reason) {
    case VM_EXIT_HLT:
        snprintf(buf, size, "guest halted at rip 0x%llx with %s", (unsigned long long)e->rip,
                 e->hlt.interrupts_enabled ? "interrupts enabled and nothing pending"
                                           : "interrupts disabled");
        break;
    case VM_EXIT_IO:
        snprintf(buf, size, "port I/O: %s port 0x%x size %u count %u at rip 0x%llx",
                 e->io.direction == VM_IO_OUT ? "out" : "in", e->io.port, e->io.size, e->io.count,
                 (unsigned long long)e->rip);
        break;
    case VM_EXIT_MMIO:
        snprintf(buf, size,
                 "%s of %u bytes at unassigned guest-physical address 0x%llx (rip 0x%llx)",
                 e->mmio.is_write ? "write" : "read", e->mmio.len, (unsigned long long)e->mmio.gpa,
                 (unsigned long long)e->rip);
        break;
    case VM_EXIT_EXCEPTION:
        if (e->exception.vector == 14)
            snprintf(buf, size,
                     "guest exception %s (vector 14, error 0x%x, cr2 0x%llx) at rip 0x%llx with "
                     "no guest handler",
                     vector_name(14), e->exception.error_code, (unsigned long long)e->exception.cr2,
                     (unsigned long long)e->rip);
        else if (e->exception.has_error_code)
            snprintf(
                buf, size,
                "guest exception %s (vector %u, error 0x%x) at rip 0x%llx with no guest handler",
                vector_name(e->exception.vector), e->exception.vector, e->exception.error_code,
                (unsigned long long)e->rip);
        else
            snprintf(
                buf, size, "guest exception %s (vector %u) at rip 0x%llx with no guest handler",
                vector_name(e->exception.vector), e->exception.vector, (unsigned long long)e->rip);
        break;
    case VM_EXIT_SHUTDOWN:
        snprintf(buf, size, "triple fault (shutdown) near rip 0x%llx", (unsigned long long)e->rip);
        break;
    case VM_EXIT_BUDGET:
        snprintf(buf, size, "%s budget used up at rip 0x%llx (the guest did not finish)",
                 e->budget.kind == VM_BUDGET_INSTRUCTIONS ? "instruction" : "time",
                 (unsigned long long)e->rip);
        break;
    case VM_EXIT_FAIL_ENTRY:
        snprintf(buf, size, "backend could not enter the guest (hardware reason 0x%llx)%s%s",
                 (unsigned long long)e->fail_entry.hardware_entry_failure_reason,
                 e->internal.message[0] ? ": " : "", "");
        break;
    case VM_EXIT_INTERNAL_ERROR:
        snprintf(buf, size, "backend internal error (suberror %u, %s) at rip 0x%llx: %s",
                 e->internal.suberror,
                 vm_internal_suberror_name(e->internal.suberror)
                     ? vm_internal_suberror_name(e->internal.suberror)
                     : "undocumented",
                 (unsigned long long)e->rip,
                 e->internal.message[0] ? e->internal.message : "no detail");
        break;
    case VM_EXIT_SLP_VIOLATION:
        snprintf(buf, size,
                 "second-level permission violation: %s guest-physical 0x%llx (linear %s0x%llx) "
                 "at rip 0x%llx",
                 e->slp.access & VM_SLP_FETCH   ? "fetch from"
                 : e->slp.access & VM_SLP_WRITE ? "write to"
                                                : "read of",
                 (unsigned long long)e->slp.gpa, e->slp.gla_valid ? "" : "unknown, ",
                 (unsigned long long)e->slp.gla, (unsigned long long)e->rip);
        break;
    default:
        snprintf(buf, size, "%s exit at rip 0x%llx", vm_exit_reason_name(e->reason),
                 (unsigned long long)e->rip);
        break;
    }
}
