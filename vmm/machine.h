/* machine.h - the VMM: one guest on one backend, from image to final exit.
 *
 * machine_run() creates guest memory with the backend's flags, writes the platform area
 * (vmm/platform.c), loads the image, creates the backend's vm and vcpu, and runs the loop that
 * every backend shares (kvmtool's kvm_cpu__start is the model): run, switch on the exit reason,
 * hand I/O to the devices, inject timer interrupts, enforce the time budget, stop on a final
 * exit. Library code: returns 0 / -errno and never exits.
 */
#ifndef VMLAB_MACHINE_H
#define VMLAB_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "backend.h"
#include "trace_print.h"
#include "vm_exit.h"

/* vmlab's exit statuses for endings other than the guest writing to PORT_EXIT (which exits
 * with the value written, 0-255). Documented in README.md. */
enum vmlab_status {
    VMLAB_STATUS_USAGE = 64,       /* bad command line / unknown backend */
    VMLAB_STATUS_BAD_IMAGE = 65,   /* malformed or unreadable guest image */
    VMLAB_STATUS_NO_INPUT = 66,    /* image file missing */
    VMLAB_STATUS_UNAVAILABLE = 69, /* backend not available on this host */
    VMLAB_STATUS_INTERNAL = 70,    /* backend internal error / host error */
    VMLAB_STATUS_SKIP = 77,        /* test skipped (ctest SKIP_RETURN_CODE) */
    VMLAB_STATUS_EXCEPTION = 80,   /* guest exception nobody handled */
    VMLAB_STATUS_SHUTDOWN = 81,    /* triple fault */
    VMLAB_STATUS_BUDGET = 82,      /* time budget used up (guest looped) */
    VMLAB_STATUS_HALTED = 83,      /* HLT with interrupts disabled or nothing pending */
    VMLAB_STATUS_MMIO = 84,        /* access to unassigned guest space */
    VMLAB_STATUS_FAIL_ENTRY = 85,  /* backend could not enter the guest */
    VMLAB_STATUS_CRASHED = 86,     /* the process running the guest died (isolation) */
};

struct machine_config {
    const struct backend_ops *backend;
    const char *image_path;  /* a guest ELF ... */
    const uint8_t *raw_code; /* ... or raw machine code loaded at GUEST_IMAGE_BASE (entry
                                there); used by benchmarks that generate guests */
    size_t raw_size;
    double timeout_s;      /* time budget; <= 0 means the default (5 s) */
    double timeout_scale;  /* `vmlab conformance --timeout-scale`: multiplies every budget,
                              a guest's own timeout record included (0 = 1) */
    bool trace;            /* print every trap/exit to trace_out */
    bool trap_cpuid;       /* default true */
    bool trap_rdtsc;       /* default true */
    unsigned shadow_roots; /* trap_emulate, dbt: shadow roots cached (default 4, 0 = none) */
    FILE *console_out;     /* guest console (port 0xE9); stdout by default */
    FILE *trace_out;       /* trace lines; stderr by default */
    /* trace filters and summary (vmm/trace_print.h); NULL: every event. expect_trap >= 0
     * also single-steps the guest to count what did not trap (trap_emulate). */
    const struct trace_options *trace_options;
    /* Benchmarks: also record the CPU time of the thread running the guest at every
     * PORT_BENCH_MARK write (mark_cpu_ns): the cost of the work, without the time other
     * processes of a shared machine take. */
    bool mark_cpu_time;
    /* Benchmarks: a backend statistic (a vcpu_stats name, e.g. dbt's "translate_cycles") to
     * sample at every PORT_BENCH_MARK write, after its timestamps; NULL: none. */
    const char *mark_stat;
};

struct machine_result {
    int status;               /* process exit status as documented above */
    bool guest_exited;        /* the guest wrote PORT_EXIT */
    struct vm_exit last_exit; /* the final exit */
    char message[256];        /* one line for stderr ("" when the guest exited itself) */
    struct vcpu_stats stats;
    double elapsed_s;
    /* PORT_BENCH_MARK: host CLOCK_MONOTONIC time (ns) at each OUT, and the value written.
     * Benchmarks time guest phases from the host side (the guest's RDTSC may be trapped). */
    unsigned mark_count;
    uint32_t mark_value[64];
    uint64_t mark_ns[64];
    /* With config.mark_cpu_time: the thread's CPU time (CLOCK_THREAD_CPUTIME_ID, ns) at each
     * mark. With config.mark_stat: the statistic's value at each mark, and the host time the
     * sampling took (after both timestamps: a benchmark subtracts it from the interval that
     * starts at that mark). */
    uint64_t mark_cpu_ns[64];
    uint64_t mark_stat[64];
    uint64_t mark_stat_ns[64];
    /* Backend-specific stats captured at the end (name, value, unit). */
    unsigned backend_stat_count;
    struct {
        char name[48];
        uint64_t value;
        char unit[16];
    } backend_stats[64];
};

void machine_config_defaults(struct machine_config *config);
/* 0 with *result filled (the guest's fate is in result->status), or -errno if the run could
 * not even start (result->status and message still say why). */
int machine_run(const struct machine_config *config, struct machine_result *result);

/* Print the --stats table. */
void machine_print_stats(const struct machine_result *result, FILE *out);

#endif
