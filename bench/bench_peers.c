/* bench_peers.c - experiment "peers": the same compute code natively, under qemu-user (TCG),
 * under valgrind --tool=none, and as a guest on every backend; per-iteration time relative to
 * native. One set of rows per workload of bench/workloads.def.
 *
 * A workload is a flat position-independent blob, uint64_t kernel(uint64_t iterations) at
 * offset 0 (SysV ABI). The Linux-program configurations run `vmlab __compute-peer WORKLOAD
 * N`, which copies the blob into an executable mapping and times the call with
 * CLOCK_MONOTONIC (tool start-up excluded); the guest configurations run it as raw guest code
 * between two host-timestamped marks. Every configuration's checksum after a short run must
 * equal the one computed natively in this process, or its row says WRONG RESULT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_internal.h"

#define BENCH_WORKLOAD(id, file, description)                                                      \
    extern const unsigned char bench_workload_##id##_blob[];                                       \
    extern const unsigned long bench_workload_##id##_blob_size;
#include "workloads.def"
#undef BENCH_WORKLOAD

const struct bench_workload *bench_workloads(unsigned *count)
{
    static struct bench_workload list[] = {
#define BENCH_WORKLOAD(id, file, description) {#id, description, bench_workload_##id##_blob, 0},
#include "workloads.def"
#undef BENCH_WORKLOAD
    };
    static const unsigned long *const sizes[] = {
#define BENCH_WORKLOAD(id, file, description) &bench_workload_##id##_blob_size,
#include "workloads.def"
#undef BENCH_WORKLOAD
    };
    *count = sizeof(list) / sizeof(list[0]);
    for (unsigned i = 0; i < *count; i++)
        list[i].size = *sizes[i];
    return list;
}

static const struct bench_workload *workload_find(const char *name)
{
    unsigned count;
    const struct bench_workload *w = bench_workloads(&count);
    for (unsigned i = 0; i < count; i++)
        if (!strcmp(w[i].name, name))
            return &w[i];
    return NULL;
}

typedef uint64_t kernel_fn(uint64_t iterations);

/* The workload copied into an executable mapping of this process (kept for its lifetime). */
static kernel_fn *native_kernel(const struct bench_workload *w)
{
    size_t size = (w->size + 4095) & ~4095UL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memcpy(p, w->blob, w->size);
    if (mprotect(p, size, PROT_READ | PROT_EXEC) < 0)
        return NULL;
    return (kernel_fn *)p;
}

int bench_compute_peer_main(int argc, char **argv)
{
    if (argc < 3)
        return 64;
    const struct bench_workload *w = workload_find(argv[1]);
    if (!w)
        return 64;
    uint64_t n = strtoull(argv[2], NULL, 10);
    kernel_fn *f = native_kernel(w);
    if (!f)
        return 70;
    double t0 = bench_now_s();
    uint64_t sum = f(n);
    double t1 = bench_now_s();
    printf("%llx %.0f\n", (unsigned long long)sum, (t1 - t0) * 1e9);
    return 0;
}

/* ---- configurations ---------------------------------------------------------------------- */

#define MAX_WORKLOADS 8
#define MAX_CONFIGS (3 + BENCH_MAX_BACKENDS)

struct peer_row {
    const char *config;
    bool measured;
    char why_not[BENCH_WHY_SIZE];
    uint64_t iterations;            /* kernel iterations per run (calibrated) */
    struct bench_stats ns_per_iter; /* wall time of the kernel itself per iteration */
};

struct peers_state {
    unsigned workload_count, config_count;
    const struct bench_workload *workload[MAX_WORKLOADS];
    char config_name[MAX_CONFIGS][64];
    struct peer_row row[MAX_WORKLOADS][MAX_CONFIGS];
};

/* A Linux-program configuration: argv with "W" for the workload and "N" for the count. */
static const struct {
    const char *name;
    const char *package; /* Debian package that provides argv[0] */
    const char *argv[8];
} programs[] = {
    {"native", NULL, {"SELF", "__compute-peer", "W", "N", NULL}},
    {"qemu-user (TCG)", "qemu-user", {"qemu-x86_64", "SELF", "__compute-peer", "W", "N", NULL}},
    {"valgrind --tool=none",
     "valgrind",
     {"valgrind", "--tool=none", "-q", "SELF", "__compute-peer", "W", "N", NULL}},
};
#define PROGRAM_COUNT (sizeof(programs) / sizeof(programs[0]))

/* Run a peer program; it prints "checksum elapsed_ns". 0 with the kernel's own time. */
static int run_program(char *const argv[], const char *package, double *ns, uint64_t *checksum,
                       char *why, size_t why_size)
{
    int fds[2];
    if (pipe(fds) < 0) {
        snprintf(why, why_size, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_size, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (!freopen("/dev/null", "w", stderr))
            _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    char out[256] = "";
    size_t got = 0;
    ssize_t k;
    while (got < sizeof(out) - 1 && (k = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
        got += (size_t)k;
    out[got] = 0;
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    unsigned long long sum;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        if (package)
            snprintf(why, why_size, "%s is not installed (apt-get install %s)", argv[0], package);
        else
            snprintf(why, why_size, "%s could not be started", argv[0]);
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || sscanf(out, "%llx %lf", &sum, ns) != 2) {
        snprintf(why, why_size, "%s failed (%s %d)", argv[0],
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return -1;
    }
    *checksum = sum;
    return 0;
}

/* Guest code: mark 1; kernel(n); mark 2; the checksum as two mark values; exit. The kernel
 * blob follows, 16-byte aligned. */
static int build_compute_guest(const struct bench_workload *w, uint64_t n, struct bench_code *c)
{
    c->n = 0;
    c->overflow = false;
    bench_emit_mark(c, 1);
    BENCH_EMIT(c, 0x48, 0xbf);
    bench_emit_u64(c, n); /* movabs rdi, n */
    BENCH_EMIT(c, 0xe8);  /* call kernel */
    size_t call_end = c->n + 4;
    bench_emit_u32(c, 0);
    BENCH_EMIT(c, 0x48, 0x89, 0xc3); /* mov rbx, rax */
    bench_emit_mark(c, 2);
    BENCH_EMIT(c, 0x89, 0xd8); /* mov eax, ebx */
    bench_emit_mark_eax(c);
    BENCH_EMIT(c, 0x48, 0x89, 0xd8, 0x48, 0xc1, 0xe8, 0x20); /* mov rax, rbx; shr rax, 32 */
    bench_emit_mark_eax(c);
    bench_emit_exit(c);
    while (c->n % 16)
        BENCH_EMIT(c, 0xcc);
    int32_t rel = (int32_t)(c->n - call_end);
    memcpy(c->b + call_end - 4, &rel, 4);
    bench_emit(c, w->blob, w->size);
    return c->overflow ? -1 : 0;
}

/* One measurement (backend < 0: program p; else a backend index): the kernel's own time and
 * its checksum. */
static int measure_once(const struct bench_ctx *ctx, const struct bench_workload *w, int program,
                        int backend, uint64_t n, double *ns_total, uint64_t *checksum, char *why,
                        size_t why_size)
{
    if (backend < 0) {
        char count[32];
        snprintf(count, sizeof(count), "%llu", (unsigned long long)n);
        char *argv[8];
        unsigned i = 0;
        for (; programs[program].argv[i]; i++) {
            const char *a = programs[program].argv[i];
            argv[i] = !strcmp(a, "SELF") ? (char *)ctx->opt->self_exe
                      : !strcmp(a, "W")  ? (char *)w->name
                      : !strcmp(a, "N")  ? count
                                         : (char *)a;
        }
        argv[i] = NULL;
        return run_program(argv, programs[program].package, ns_total, checksum, why, why_size);
    }
    static struct bench_code c;
    if (build_compute_guest(w, n, &c) < 0) {
        snprintf(why, why_size, "the workload does not fit the guest image");
        return -1;
    }
    struct machine_result *r =
        bench_run_guest(ctx->host.backend[backend], &c, 300.0, 4, why, why_size);
    if (!r)
        return -1;
    *ns_total = (double)(r->mark_ns[1] - r->mark_ns[0]);
    *checksum = ((uint64_t)r->mark_value[3] << 32) | r->mark_value[2];
    free(r);
    return 0;
}

static void measure_row(const struct bench_ctx *ctx, const struct bench_workload *w,
                        struct peer_row *pr, int program, int backend, uint64_t want,
                        uint64_t max_n)
{
    /* Calibrate with a short run whose checksum must match the kernel run natively in this
     * process (a wrong result is a failure, not a data point), then run as many iterations
     * as fit the per-run budget. */
    const struct bench_options *o = ctx->opt;
    double budget_ns = o->quick ? 0.3e9 : 1.5e9;
    const uint64_t n0 = 100;
    double t0;
    uint64_t sum = 0;
    bench_progress(ctx, "bench: %s %-22s ", w->name, pr->config);
    if (measure_once(ctx, w, program, backend, n0, &t0, &sum, pr->why_not, sizeof(pr->why_not)) <
        0) {
        bench_progress(ctx, "%s\n", pr->why_not);
        return;
    }
    if (sum != want) {
        snprintf(pr->why_not, sizeof(pr->why_not),
                 "WRONG RESULT: checksum %#llx after %llu iterations, native gives %#llx",
                 (unsigned long long)sum, (unsigned long long)n0, (unsigned long long)want);
        bench_progress(ctx, "%s\n", pr->why_not);
        return;
    }
    double per = t0 / (double)n0;
    uint64_t n = per > 0 ? (uint64_t)(budget_ns / per) : max_n;
    if (n > max_n)
        n = max_n;
    if (n < n0)
        n = n0;
    pr->iterations = n;
    unsigned reps = o->quick ? 2 : 3;
    double samples[8];
    unsigned got = 0;
    for (unsigned r = 0; r < reps; r++) {
        double t;
        if (measure_once(ctx, w, program, backend, n, &t, &sum, pr->why_not, sizeof(pr->why_not)) <
            0)
            break;
        samples[got++] = t / (double)n;
    }
    pr->measured = got == reps;
    if (pr->measured)
        bench_stats_of(samples, got, &pr->ns_per_iter);
    bench_progress(ctx, "%s\n", pr->measured ? "done" : pr->why_not);
}

static void peers_measure(struct bench_ctx *ctx, void *state)
{
    struct peers_state *st = state;
    const struct bench_host *h = &ctx->host;
    uint64_t max_n = ctx->opt->quick ? 1000000ULL : 10000000ULL;
    unsigned wcount;
    const struct bench_workload *wl = bench_workloads(&wcount);
    st->workload_count = wcount < MAX_WORKLOADS ? wcount : MAX_WORKLOADS;
    st->config_count = PROGRAM_COUNT + h->backend_count;
    for (unsigned p = 0; p < PROGRAM_COUNT; p++)
        snprintf(st->config_name[p], sizeof(st->config_name[p]), "%s", programs[p].name);
    for (unsigned b = 0; b < h->backend_count; b++)
        snprintf(st->config_name[PROGRAM_COUNT + b], sizeof(st->config_name[0]), "guest on %s",
                 h->backend_name[b]);
    for (unsigned i = 0; i < st->workload_count; i++) {
        const struct bench_workload *w = &wl[i];
        st->workload[i] = w;
        kernel_fn *native = native_kernel(w);
        uint64_t want = native ? native(100) : 0;
        for (unsigned k = 0; k < st->config_count; k++) {
            struct peer_row *pr = &st->row[i][k];
            pr->config = st->config_name[k];
            if (!native) {
                snprintf(pr->why_not, sizeof(pr->why_not), "cannot map the workload natively");
                continue;
            }
            if (k < PROGRAM_COUNT) {
                measure_row(ctx, w, pr, (int)k, -1, want, max_n);
                continue;
            }
            unsigned b = k - PROGRAM_COUNT;
            if (!h->backend_available[b]) {
                snprintf(pr->why_not, sizeof(pr->why_not), "backend unavailable: %s",
                         h->backend_note[b]);
                continue;
            }
            measure_row(ctx, w, pr, -1, (int)b, want, max_n);
        }
    }
}

static double slowdown(const struct peers_state *st, unsigned i, unsigned k)
{
    const struct peer_row *native = &st->row[i][0], *pr = &st->row[i][k];
    return native->measured && pr->measured && native->ns_per_iter.median > 0
               ? pr->ns_per_iter.median / native->ns_per_iter.median
               : 0;
}

static void peers_write_files(struct bench_ctx *ctx, const void *state)
{
    const struct peers_state *st = state;
    FILE *f = bench_file_open(ctx, "peers.csv");
    if (f) {
        fprintf(f, "workload,peer,measured,iterations,median_ns_per_iteration,min_ns,max_ns,"
                   "slowdown_vs_native,note\n");
        for (unsigned i = 0; i < st->workload_count; i++)
            for (unsigned k = 0; k < st->config_count; k++) {
                const struct peer_row *pr = &st->row[i][k];
                if (pr->measured)
                    fprintf(f, "%s,\"%s\",yes,%llu,%.4f,%.4f,%.4f,%.3f,\n", st->workload[i]->name,
                            pr->config, (unsigned long long)pr->iterations, pr->ns_per_iter.median,
                            pr->ns_per_iter.min, pr->ns_per_iter.max, slowdown(st, i, k));
                else
                    fprintf(f, "%s,\"%s\",no,,,,,,\"%s\"\n", st->workload[i]->name, pr->config,
                            pr->why_not);
            }
        bench_file_close(ctx, f);
    }
    f = bench_file_open(ctx, "peers.dat");
    double top = 10;
    if (f) {
        for (unsigned i = 0; i < st->workload_count; i++)
            for (unsigned k = 0; k < st->config_count; k++) {
                double s = slowdown(st, i, k);
                if (s > 0)
                    fprintf(f, "\"%s%s%s\" %.3f\n",
                            st->workload_count > 1 ? st->workload[i]->name : "",
                            st->workload_count > 1 ? ": " : "", st->row[i][k].config, s);
                else
                    fprintf(f, "\"%s (not measured)\" NaN\n", st->row[i][k].config);
                if (s * 4 > top)
                    top = s * 4; /* headroom for the labels */
            }
        bench_file_close(ctx, f);
    }
    char caption[1024];
    bench_caption(ctx, caption, sizeof(caption));
    f = bench_file_open(ctx, "peers.gp");
    if (f) {
        fprintf(f,
                "set datafile missing 'NaN'\nset style data histograms\n"
                "set style fill solid 0.8 border -1\nset boxwidth 0.7\nset grid ytics\n"
                "set logscale y\nset ylabel 'time per loop iteration relative to native "
                "(log scale)'\nset yrange [0.1:%g]\n"
                "set xtics rotate by -20\nunset key\n"
                "set title \"Same compute loop: slowdown vs native (1.0)\\n%s\" font ',10'\n",
                top, caption);
        fprintf(f,
                "set terminal png size 1100,650 noenhanced\nset output 'peers.png'\n"
                "plot 'peers.dat' using 2:xtic(1) with boxes, '' using 0:2:(sprintf('%%.2fx',$2)) "
                "with labels offset 0,1\n");
        fprintf(f, "set terminal svg size 1100,650 noenhanced\nset output 'peers.svg'\nreplot\n");
        bench_file_close(ctx, f);
        bench_plot(ctx, "peers.gp");
    }
}

static void peers_write_section(struct bench_ctx *ctx, const void *state, struct bench_doc *d)
{
    (void)ctx;
    const struct peers_state *st = state;
    bench_doc_heading(d, "The same compute code: native, qemu-user, valgrind, guests");
    bench_doc_figure(d, "peers.png", "peers");
    for (unsigned i = 0; i < st->workload_count; i++) {
        const struct bench_workload *w = st->workload[i];
        bench_doc_para(d, "Workload **%s** (%lu bytes of position-independent machine code): %s.",
                       w->name, w->size, w->description);
        bench_doc_table(d, 5,
                        (const char *[]){"run", "iterations", "ns per iteration (median)",
                                         "min-max", "vs native"});
        for (unsigned k = 0; k < st->config_count; k++) {
            const struct peer_row *pr = &st->row[i][k];
            bench_doc_cell(d, "%s", pr->config);
            if (pr->measured) {
                bench_doc_cell(d, "%llu", (unsigned long long)pr->iterations);
                bench_doc_cell(d, "%.3f", pr->ns_per_iter.median);
                bench_doc_cell(d, "%.3f-%.3f", pr->ns_per_iter.min, pr->ns_per_iter.max);
                bench_doc_cell(d, "%.2fx", slowdown(st, i, k));
            } else {
                bench_doc_cell(d, "%s", "");
                bench_doc_cell(d, "not measured: %s", pr->why_not);
                bench_doc_cell(d, "%s", "");
                bench_doc_cell(d, "%s", "");
            }
        }
        bench_doc_table_end(d);
    }
    bench_doc_para(
        d, "The same bytes run as a Linux program natively, under qemu-x86_64 (TCG) and "
           "valgrind --tool=none (timed inside the program with CLOCK_MONOTONIC, so tool "
           "start-up is excluded), and as raw guest code on each available backend (timed "
           "between two host-timestamped marks). Every configuration's checksum after 100 "
           "iterations must equal the native one, or it is reported as a wrong result instead "
           "of a time. Iteration counts are calibrated per run so that slow configurations stay "
           "within the time budget; the comparison is per iteration. Data: peers.csv.");
}

static void peers_write_json(struct bench_ctx *ctx, const void *state, FILE *f)
{
    (void)ctx;
    const struct peers_state *st = state;
    bench_json_key(f, "peers");
    fprintf(f, "[\n");
    bool first = true;
    for (unsigned i = 0; i < st->workload_count; i++)
        for (unsigned k = 0; k < st->config_count; k++) {
            const struct peer_row *pr = &st->row[i][k];
            fprintf(f, "%s    {\"workload\": ", first ? "" : ",\n");
            first = false;
            bench_json_str(f, st->workload[i]->name);
            fprintf(f, ", \"peer\": ");
            bench_json_str(f, pr->config);
            fprintf(f, ", \"iterations\": %llu, \"ns_per_iteration\": ",
                    (unsigned long long)pr->iterations);
            if (pr->measured)
                bench_json_stats(f, &pr->ns_per_iter);
            else
                bench_json_not_measured(f, pr->why_not);
            fputc('}', f);
        }
    fprintf(f, "\n  ]");
}

const struct bench_experiment bench_experiment_peers = {
    .name = "peers",
    .summary = "the same compute code natively, under qemu-user, valgrind and every backend",
    .state_size = sizeof(struct peers_state),
    .measure = peers_measure,
    .write_files = peers_write_files,
    .write_section = peers_write_section,
    .write_json = peers_write_json,
};
