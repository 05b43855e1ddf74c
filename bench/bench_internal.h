/* bench_internal.h - what the harness and the built-in experiments share beyond bench.h. */
#ifndef VMLAB_BENCH_INTERNAL_H
#define VMLAB_BENCH_INTERNAL_H

#include "bench.h"

struct bench_doc {
    FILE *md, *html;
    unsigned columns, cell;
    bool in_list;
    unsigned figure_count;
    char figures[32][64]; /* every figure linked, checked once drawn */
};
void bench_doc_begin(struct bench_doc *d, const char *title);
void bench_doc_end(struct bench_doc *d);

/* A sensitive-instruction class as the cost and break-even experiments generate it. */
struct bench_class_spec {
    const char *name;
    const char *note;
    uint8_t setup[48]; /* once, before the loops */
    size_t setup_len;
    uint8_t body[16]; /* the instruction(s) measured */
    size_t body_len;
    uint8_t base[16]; /* what the baseline loop keeps of the body (e.g. CPUID's leaf setup) */
    size_t base_len;
    int gate_vector;      /* >= 0: point this IDT gate at an IRETQ handler */
    bool timer;           /* program the timer at gate_vector and STI first */
    const char *traps_if; /* trap_emulate traps it only if host_has(traps_if) (NULL: always) */
    bool never_traps;     /* sensitive but unprivileged: never traps on trap_emulate */
    /* A result check run once before the loops, leaving a value in EAX that must equal
     * `check_want` (check_len 0: none). Shows a wrong result (Popek-Goldberg) as such. */
    uint8_t check[48];
    size_t check_len;
    uint32_t check_want;
    const char *check_what; /* what a wrong value means */
};
const struct bench_class_spec *bench_class_specs(unsigned *count);
const struct bench_class_spec *bench_class_spec_find(const char *name);
/* Does `spec` trap on trap_emulate on this host? If not, `why` says so. */
bool bench_class_traps(const struct bench_class_spec *spec, const struct bench_host *host,
                       char *why, size_t why_size);

/* N distinct blocks {cli; jmp next}, the whole chain run `reps` times, between marks 1 and
 * 2 (bench_translation.c). */
void bench_build_block_chain(unsigned nblocks, unsigned reps, struct bench_code *c);

/* Results other experiments build on (state: bench_state(ctx, "classes") ...). */
bool bench_classes_cost(const void *classes_state, const char *cls, int backend, double *median_ns);
double bench_translation_cold_ns_per_insn(const void *translation_state);

/* Run `vmlab __compute-peer ...` (argv, possibly under a tool); it prints "checksum ns".
 * 0 with the kernel's CPU time and checksum; -1 with the reason in `why`: `missing` (how to
 * get argv[0]) where argv[0] cannot be executed, a kill after `timeout_s` seconds (a tool that
 * hangs must not hang the report), a failure or unreadable output (bench_peers.c). */
int bench_run_peer_program(char *const argv[], const char *missing, double timeout_s, double *ns,
                           uint64_t *checksum, char *why, size_t why_size);
/* A peer run's limit: as a guest run's (the runs are calibrated to seconds) */
#define BENCH_PEER_TIMEOUT_S 300.0
/* DynamoRIO's launcher, which Debian does not package: the program VMLAB_DRRUN names (a path,
 * or a name looked up on PATH), else drrun. */
const char *bench_drrun_path(void);
#define BENCH_DRRUN_MISSING                                                                        \
    "Debian does not package DynamoRIO: build it from https://github.com/DynamoRIO/dynamorio "     \
    "and put its bin64/drrun on PATH, or name it in VMLAB_DRRUN"

#endif
