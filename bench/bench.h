/* bench.h - vmlab's benchmark harness (`vmlab bench`, `make report`).
 *
 * Method: a generated guest runs a loop of N iterations of one sensitive instruction between
 * two host-timestamped marks (OUT to PORT_BENCH_MARK), then the same loop without the
 * instruction; cost per instruction = (t_loop - t_baseline) / N. Each measurement is repeated
 * R times in fresh guests; the report gives the median and the spread. Timing is taken on the
 * host (CLOCK_MONOTONIC), never from the guest's TSC, which may be trapped or virtual.
 */
#ifndef VMLAB_BENCH_H
#define VMLAB_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/backend.h"

struct bench_stats {
    unsigned n;
    double median, min, max, q1, q3;
};

/* Sort a copy of the samples and summarize (n = 0 gives all zeros). */
void bench_stats_of(const double *samples, unsigned n, struct bench_stats *out);
/* First sweep point m[i] at which the dbt total is no longer above the trap total (dbt[i] <=
 * trap[i]); 0 if dbt never catches up within the sweep. */
double bench_crossover_first(const double *m, const double *trap, const double *dbt, unsigned n);

struct bench_options {
    bool quick;
    unsigned repetitions;
    const char *out_dir;
    const char *self_exe; /* path of vmlab, for the compute peer */
};

#define BENCH_MAX_BACKENDS 3
#define BENCH_MAX_CLASSES 16

struct bench_class_result {
    const char *class_name;
    const char *note; /* e.g. "not trapped: sensitive but unprivileged" */
    unsigned iterations;
    bool measured[BENCH_MAX_BACKENDS];
    char why_not[BENCH_MAX_BACKENDS][600];
    struct bench_stats ns[BENCH_MAX_BACKENDS]; /* per instruction, baseline subtracted */
};

/* dbt translation cost B, from the dbt backend's own statistics (TSC-timed), on guests whose
 * every block is new, with a bare ZydisDecoderDecodeFull of the same bytes in the same run as
 * the floor. B depends on the process's warmth and on the block shape, so three cases: */
enum bench_b_case_id {
    BENCH_B_COLD, /* the first 512 2-instruction blocks of a fresh process: what each short
                   * run of the break-even sweep pays (its predictions use this) */
    BENCH_B_BULK, /* 4096 2-instruction blocks in one run: start-up amortized; per-block
                   * work (writing the block, its exit stub, metadata) weighs most here */
    BENCH_B_LONG, /* 1024 8-instruction blocks (six ALU/LEA/MOV, CLI, JMP): closer to
                   * compiled code, whose basic blocks average ~5-6 instructions */
    BENCH_B_CASES
};
struct bench_b_case {
    const char *name, *description;
    unsigned blocks, insns_per_block;
    struct bench_stats ns_per_block, ns_per_insn;
    struct bench_stats decode_ns_per_insn; /* bare ZydisDecoderDecodeFull of the same bytes */
};
struct bench_translation {
    bool measured;
    char why_not[600];
    struct bench_b_case cases[BENCH_B_CASES];
};

/* Break-even for one class: predicted m* = B / (h - p) and the observed crossover of a sweep
 * over m (executions of the block that holds the instruction). */
#define BENCH_SWEEP_MAX 16
struct bench_breakeven {
    const char *class_name;
    bool measured;
    char why_not[600];
    double h_ns, p_ns, b_ns, predicted;
    unsigned sweep_count;
    unsigned m[BENCH_SWEEP_MAX];
    double trap_ns[BENCH_SWEEP_MAX], dbt_ns[BENCH_SWEEP_MAX]; /* medians, total per run */
    double observed; /* smallest m where dbt <= trap; 0 if never within the sweep */
    double observed_min, observed_max; /* the same, per repetition: its spread */
};

/* Footprint x repetitions: which technique wins. */
#define BENCH_FOOT_N 4
#define BENCH_FOOT_R 5
struct bench_footprint {
    bool measured;
    char why_not[600];
    unsigned blocks[BENCH_FOOT_N], reps[BENCH_FOOT_R];
    double trap_ns[BENCH_FOOT_N][BENCH_FOOT_R], dbt_ns[BENCH_FOOT_N][BENCH_FOOT_R];
};

struct bench_peer_result {
    const char *name;
    bool measured;
    char why_not[600];
    uint64_t iterations;            /* kernel iterations per run (calibrated) */
    struct bench_stats ns_per_iter; /* wall time of the kernel itself per iteration */
};

struct bench_host {
    char cpu[128], kernel[320], date[64];
    double tsc_ghz;                          /* measured against CLOCK_MONOTONIC */
    struct bench_stats signal_round_trip_ns; /* kernel floor: #GP -> SIGSEGV -> sigreturn */
    struct bench_stats syscall_ns;           /* getppid */
    char backend_note[BENCH_MAX_BACKENDS][512];
    bool backend_available[BENCH_MAX_BACKENDS];
    const char *backend_name[BENCH_MAX_BACKENDS];
};

struct bench_results {
    struct bench_host host;
    unsigned class_count;
    struct bench_class_result classes[BENCH_MAX_CLASSES];
    unsigned peer_count;
    struct bench_peer_result peers[8];
    uint64_t compute_iterations;
    unsigned repetitions;
    struct bench_translation translation;
    unsigned breakeven_count;
    struct bench_breakeven breakeven[8];
    struct bench_footprint footprint;
};

void bench_measure_breakeven(struct bench_results *r, const struct bench_options *o);

void bench_measure_host(struct bench_host *host, const struct bench_options *o);
void bench_measure_classes(struct bench_results *r, const struct bench_options *o);
void bench_measure_peers(struct bench_results *r, const struct bench_options *o);
int bench_write_report(const struct bench_results *r, const struct bench_options *o);
/* The compute kernel shared by the peer program and the guest (same machine code). */
/* bench/compute_kernel.c as a flat blob (generated compute_kernel_blob.c) */
extern const unsigned char bench_compute_kernel[];
extern const unsigned long bench_compute_kernel_size;
int bench_compute_peer_main(int argc, char **argv);

#endif
