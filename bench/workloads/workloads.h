/* workloads.h - the benchmark's workload classes (bench/workloads/), host side.
 *
 * Five programs of the kinds that make binary translators slow, written for vmlab (see each
 * source for what it does): a bytecode interpreter with switch dispatch, calls through
 * function pointers and vtables, deep recursion, a generated large-footprint program (3000
 * functions, ~220 KB of code) and memory/string kernels. Each is a flat position-independent
 * blob (workload_blob.h has the calling convention) embedded in vmlab, run natively (code
 * mapped at the very address the guest runs it from, so alignment and cache/predictor
 * indexing match) and as raw guest code on every backend.
 */
#ifndef VMLAB_BENCH_WORKLOADS_H
#define VMLAB_BENCH_WORKLOADS_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/guest_layout.h"

struct perf_workload {
    const char *name;  /* short id, as on the command line: "interpreter" */
    const char *title; /* for tables: "bytecode interpreter, switch dispatch" */
    const unsigned char *code;
    const unsigned long *size;
};

extern const struct perf_workload perf_workloads[];
extern const unsigned perf_workload_count;
const struct perf_workload *perf_workload_find(const char *name);

/* The blob lies page-aligned right after one page of guest prologue. */
#define PERF_WORKLOAD_CODE_GPA (GUEST_IMAGE_BASE + 0x1000)

typedef uint64_t perf_workload_fn(uint64_t iterations);

/* Map the workload natively, at the guest's address if it is free, elsewhere (same page
 * alignment) if not. NULL on failure. The mapping stays for the life of the process. */
perf_workload_fn *perf_workload_native(const struct perf_workload *w);

/* Guest code running the workload: mark 1; workload_entry(iterations); mark 2; the 64-bit
 * checksum as two 32-bit marks; exit 0. *code is malloc'd. 0 or -ENOMEM. */
int perf_workload_guest(const struct perf_workload *w, uint64_t iterations, uint8_t **code,
                        size_t *size);

#endif
