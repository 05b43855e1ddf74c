/* bench.h - vmlab's benchmark harness (`vmlab bench`, `make report`) and the interface of
 * one experiment.
 *
 * THE HARNESS (bench_harness.c) measures the host (CPU, kernel, TSC rate, the kernel floor of
 * a trap, what each backend can do here), then runs every registered experiment in the order
 * of bench/experiments.def, then writes the report into the output folder (created with its
 * parents): index.md and index.html (one section per experiment, written once through the
 * bench_doc_* calls and rendered as both), results.json (a "host" object, then each
 * experiment's members), each experiment's own files (CSV, gnuplot data and scripts), and the
 * figures (every registered gnuplot script rendered to PNG and SVG). Any file that cannot be
 * written, or a figure gnuplot cannot draw, is an error: `vmlab bench` exits non-zero and says
 * which file, and never claims the report was written.
 *
 * ADDING AN EXPERIMENT takes a new file and one line:
 *
 *   1. bench/bench_memory.c:
 *
 *        struct memory_state { bool measured; char why_not[BENCH_WHY_SIZE]; ... };
 *
 *        static void memory_measure(struct bench_ctx *ctx, void *state)
 *        {   // fresh guests through bench_run_guest_marks() (CPU time: .cpu_time = true);
 *            // repetitions: ctx->opt->repetitions; another experiment's results:
 *            // bench_state(ctx, "classes"); what cannot be measured is recorded with the
 *            // reason, never estimated; progress via bench_progress()
 *        }
 *        static void memory_write_files(struct bench_ctx *ctx, const void *state)
 *        {   FILE *f = bench_file_open(ctx, "memory.csv"); ... bench_file_close(ctx, f);
 *            // a figure: write memory.dat and memory.gp, then bench_plot(ctx, "memory.gp")
 *        }
 *        static void memory_write_section(struct bench_ctx *ctx, const void *state,
 *                                         struct bench_doc *doc)
 *        {   bench_doc_heading(doc, "Memory virtualization");
 *            bench_doc_para(doc, "...");  bench_doc_figure(doc, "memory.png", "...");
 *            bench_doc_table(doc, 3, (const char *[]){"case", "ns", "note"}); ...
 *        }
 *        static void memory_write_json(struct bench_ctx *ctx, const void *state, FILE *f)
 *        {   bench_json_key(f, "memory"); fprintf(f, "[...]");   // one or more members
 *        }
 *        const struct bench_experiment bench_experiment_memory = {
 *            .name = "memory", .summary = "shadow paging vs nested paging",
 *            .state_size = sizeof(struct memory_state), .measure = memory_measure,
 *            .write_files = memory_write_files, .write_section = memory_write_section,
 *            .write_json = memory_write_json,
 *        };
 *
 *   2. bench/experiments.def: `BENCH_EXPERIMENT(memory)` where its section should appear.
 *      bench/CMakeLists.txt reads that list and compiles bench/bench_<name>.c; the harness
 *      calls the four functions; `vmlab bench --only memory` runs just this one.
 *
 * A COMPUTE WORKLOAD for the peers comparison (native, qemu-user, valgrind, each backend) is
 * a freestanding C file exporting `uint64_t kernel(uint64_t iterations)` that returns a
 * checksum, plus one line `BENCH_WORKLOAD(name, path/to/file.c, "what it computes")` in
 * bench/workloads.def. CMake builds it as a flat position-independent blob and embeds it; the
 * peers experiment runs it everywhere, checks every checksum against native, and adds its rows
 * to the peers table, figure, CSV and JSON.
 *
 * METHOD of the generated guests: a guest is raw machine code (struct bench_code). It writes
 * to PORT_BENCH_MARK (bench_emit_mark) around each phase; the VMM records every mark on the
 * host when it handles the exit - CLOCK_MONOTONIC always (mark_ns), the CPU time of the guest
 * thread on request (mark_cpu_ns: what the report uses, so that other processes of a shared
 * machine stay out), a backend statistic on request (mark_stat, e.g. dbt's translate_cycles)
 * - so the guest's own clock (trapped or virtual on some backends) never enters a figure.
 * Cost per instruction = (loop with the instruction - the same loop without it) / N. Each
 * measurement is repeated in fresh guest processes; the report gives medians and the spread
 * (Q1-Q3, min-max).
 *
 * Library rules apply: measurement code prints only progress (bench_progress: only when
 * stderr is a terminal) and never exits.
 */
#ifndef VMLAB_BENCH_H
#define VMLAB_BENCH_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/backend.h"
#include "vmm/machine.h"

#define BENCH_WHY_SIZE 600 /* room for a "not measured" reason */
#define BENCH_MAX_BACKENDS 3

/* ---- statistics (bench_stats.c) ---------------------------------------------------------- */

struct bench_stats {
    unsigned n;
    double median, min, max, q1, q3;
};

/* Sort a copy of the samples and summarize (n = 0 gives all zeros). */
void bench_stats_of(const double *samples, unsigned n, struct bench_stats *out);
/* Median of n samples (0 for n = 0). */
double bench_median(const double *samples, unsigned n);
/* First sweep point m[i] at which the dbt total is no longer above the trap total (dbt[i] <=
 * trap[i]); 0 if dbt never catches up within the sweep. */
double bench_crossover_first(const double *m, const double *trap, const double *dbt, unsigned n);
/* Where the crossover of two cost curves lies relative to the sweep that sampled them. */
enum bench_crossing {
    BENCH_CROSS_INSIDE, /* between two grid points */
    BENCH_CROSS_BELOW,  /* dbt already no slower at the first grid point */
    BENCH_CROSS_ABOVE,  /* dbt never catches up within the grid */
};
/* The crossover of two cost curves sampled on the same increasing grid m[0..n-1]: the first m
 * at which dbt - trap goes from > 0 to <= 0, interpolated linearly in m between the two grid
 * points around it (both curves are lines in m: a fixed cost plus a cost per execution).
 * Returns that m (INSIDE), m[0] (BELOW) or 0 (ABOVE, or n = 0). */
double bench_crossover_interpolated(const double *m, const double *trap, const double *dbt,
                                    unsigned n, enum bench_crossing *where);

/* ---- options and host facts (bench_harness.c, bench_host.c) ------------------------------ */

struct bench_options {
    bool quick;
    unsigned repetitions;
    const char *out_dir;
    const char *self_exe; /* path of vmlab, for the compute peers */
    const char *only;     /* comma-separated experiment names, or NULL for all */
};

struct bench_host {
    char cpu[128], kernel[320], date[64];
    double tsc_ghz;                          /* measured against CLOCK_MONOTONIC */
    struct bench_stats signal_round_trip_ns; /* kernel floor: #GP -> SIGSEGV -> sigreturn */
    struct bench_stats syscall_ns;           /* getppid */
    unsigned backend_count;
    const struct backend_ops *backend[BENCH_MAX_BACKENDS];
    const char *backend_name[BENCH_MAX_BACKENDS];
    bool backend_available[BENCH_MAX_BACKENDS];
    char backend_note[BENCH_MAX_BACKENDS][512];
    bool kvm_is_pvm; /* /dev/kvm is PVM (kvm_pvm): software virtualization, not VT-x/AMD-V */
};

void bench_measure_host(struct bench_host *host, const struct bench_options *o);
/* Index of the backend named `name` in host->backend[], or -1. */
int bench_backend_index(const struct bench_host *host, const char *name);

/* ---- the run context and the output files (bench_harness.c) ------------------------------ */

struct bench_ctx {
    const struct bench_options *opt;
    struct bench_host host;
    unsigned errors; /* files not written, figures not drawn */
    unsigned plot_count;
    char plots[32][64]; /* gnuplot scripts to render, in the output folder */
    void *states[64];   /* each experiment's state, in bench_experiments() order */
};

/* Progress for a person watching (stderr, only if it is a terminal); not for errors. */
void bench_progress(const struct bench_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Open `name` in the output folder for writing; NULL (and an error counted and reported)
 * if it cannot be. */
FILE *bench_file_open(struct bench_ctx *ctx, const char *name);
/* Close; a write error (disk full, I/O error) is counted and reported. f may be NULL. */
void bench_file_close(struct bench_ctx *ctx, FILE *f);
/* Render `script` (a gnuplot file already written in the output folder) after all files are
 * written. The figure it draws must be linked from the experiment's section. */
void bench_plot(struct bench_ctx *ctx, const char *script);
/* The state of experiment `name` if it ran before the caller (its results, read-only), else
 * NULL: an experiment may build on another one's measurements. */
const void *bench_state(const struct bench_ctx *ctx, const char *name);
/* The standard caption of a figure: host, kernel, repetitions, date. */
void bench_caption(const struct bench_ctx *ctx, char *buf, size_t size);

/* ---- index.md and index.html (bench_doc.c) ----------------------------------------------- */

/* Every call writes both documents. Text arguments are plain text (escaped for HTML, and '|'
 * inside Markdown table cells); `**bold**` is the only markup understood in paragraphs. */
struct bench_doc;
void bench_doc_heading(struct bench_doc *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void bench_doc_para(struct bench_doc *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A bullet item (consecutive items form one list). */
void bench_doc_item(struct bench_doc *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void bench_doc_figure(struct bench_doc *d, const char *png, const char *alt);
void bench_doc_table(struct bench_doc *d, unsigned columns, const char *const *headers);
void bench_doc_cell(struct bench_doc *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))); /* the next cell; rows wrap after `columns` */
void bench_doc_table_end(struct bench_doc *d);

/* ---- results.json helpers (bench_doc.c) -------------------------------------------------- */

/* `,\n  "key": ` - every member of results.json after "host" starts with this. */
void bench_json_key(FILE *f, const char *key);
void bench_json_str(FILE *f, const char *s);
void bench_json_stats(FILE *f, const struct bench_stats *s);
/* {"not_measured": "why"}: a value that could not be measured, with the reason */
void bench_json_not_measured(FILE *f, const char *why);

/* ---- an experiment ------------------------------------------------------------------------ */

struct bench_experiment {
    const char *name;    /* results.json key / file stem, e.g. "memory" (--only NAME) */
    const char *summary; /* one line, for `vmlab bench --help` */
    size_t state_size;   /* the harness gives each call a zeroed block of this size */
    /* Measure. Never fails: what cannot be measured is kept in the state with the reason. */
    void (*measure)(struct bench_ctx *ctx, void *state);
    /* Optional: CSV, gnuplot data and scripts (bench_file_open, bench_plot). */
    void (*write_files)(struct bench_ctx *ctx, const void *state);
    /* Its section(s) of index.md / index.html. */
    void (*write_section)(struct bench_ctx *ctx, const void *state, struct bench_doc *doc);
    /* Its member(s) of results.json, each started with bench_json_key. */
    void (*write_json)(struct bench_ctx *ctx, const void *state, FILE *f);
};

/* Run the experiments (all, or o->only) and write the report. 0 if every file and figure was
 * written; -1 otherwise (each failure already reported on stderr). */
int bench_run(const struct bench_options *o);
/* The registered experiments, in report order (bench/experiments.def). */
const struct bench_experiment *const *bench_experiments(unsigned *count);

/* ---- generated guests (bench_guest.c) ------------------------------------------------------ */

struct bench_code {
    uint8_t b[1u << 19]; /* raw code at GUEST_IMAGE_BASE */
    size_t n;
    bool overflow; /* an emit did not fit: the guest must not be run */
};

void bench_emit(struct bench_code *c, const void *bytes, size_t n);
void bench_emit_u32(struct bench_code *c, uint32_t v);
void bench_emit_u64(struct bench_code *c, uint64_t v);
#define BENCH_EMIT(c, ...)                                                                         \
    do {                                                                                           \
        static const uint8_t bench_bytes_[] = {__VA_ARGS__};                                       \
        bench_emit(c, bench_bytes_, sizeof(bench_bytes_));                                         \
    } while (0)
/* OUT of `id` to PORT_BENCH_MARK (preserves every register but RAX). */
void bench_emit_mark(struct bench_code *c, uint32_t id);
/* OUT of EAX to PORT_BENCH_MARK (a result value, e.g. a checksum half). */
void bench_emit_mark_eax(struct bench_code *c);
/* mov r15, n; top: body; dec r15; jnz top */
void bench_emit_loop(struct bench_code *c, uint32_t n, const uint8_t *body, size_t len);
/* cli; xor eax, eax; out PORT_EXIT, al; hlt: the guest's end, status 0 */
void bench_emit_exit(struct bench_code *c);

/* Run generated code on a backend in a child process (vmlab's isolation). Returns the result
 * (free() it), or NULL with `why` when the run failed or produced fewer than `min_marks`
 * marks. */
struct machine_result *bench_run_guest(const struct backend_ops *ops, const struct bench_code *c,
                                       double timeout_s, unsigned min_marks, char *why,
                                       size_t why_size);
/* What the VMM records at each mark beyond its CLOCK_MONOTONIC time (result->mark_ns). */
struct bench_marks {
    bool cpu_time;         /* result->mark_cpu_ns: the guest thread's CPU time */
    const char *stat_name; /* result->mark_stat: a backend statistic (dbt: "translate_cycles"),
                            * and mark_stat_ns: what sampling it cost */
};
struct machine_result *bench_run_guest_marks(const struct backend_ops *ops,
                                             const struct bench_code *c, double timeout_s,
                                             unsigned min_marks, const struct bench_marks *marks,
                                             char *why, size_t why_size);
/* A backend statistic of a finished run by name ("translate_ns", "kvm.insn_emulation"); false
 * if the backend did not report it. */
bool bench_result_stat(const struct machine_result *r, const char *name, double *value);

double bench_now_s(void); /* CLOCK_MONOTONIC */
/* Instructions in `len` bytes of generated code (Zydis, linear sweep). */
unsigned bench_count_insns(const uint8_t *code, size_t len);

/* ---- compute workloads (bench/workloads.def) --------------------------------------------- */

struct bench_workload {
    const char *name, *description;
    const unsigned char *blob; /* flat PIC: uint64_t kernel(uint64_t iterations) at offset 0 */
    unsigned long size;
};
const struct bench_workload *bench_workloads(unsigned *count);
/* The workload's blob mapped executable in this process, for a native run: at the address the
 * guest runs it from (GUEST_IMAGE_BASE + 4096, so that placement-sensitive costs match) when
 * at_guest_address is set and that address is free, elsewhere otherwise. NULL on failure. */
typedef uint64_t bench_kernel_fn(uint64_t iterations);
bench_kernel_fn *bench_workload_map_native(const struct bench_workload *w, bool at_guest_address);
/* The "compute" workload's blob (bench/compute_kernel.c), under the names the dbt unit test
 * uses to run it in-process. */
extern const unsigned char bench_workload_compute_blob[];
extern const unsigned long bench_workload_compute_blob_size;
#define bench_compute_kernel bench_workload_compute_blob
#define bench_compute_kernel_size bench_workload_compute_blob_size
/* `vmlab __compute-peer WORKLOAD N [WARMUP]`: the program that native, qemu-user, valgrind and
 * DynamoRIO time; prints "checksum ns", the process CPU time of N iterations (after WARMUP
 * untimed ones: steady state). */
int bench_compute_peer_main(int argc, char **argv);

#endif
