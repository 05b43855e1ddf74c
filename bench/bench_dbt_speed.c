/* bench_dbt_speed.c - experiment "dbt_speed": what each of dbt's speed techniques brings, on
 * every workload of bench/workloads.def, and the code expansion.
 *
 * The techniques (backends/dbt/dbt.h struct dbt_options, VMLAB_DBT): exit stubs kept apart
 * from the blocks' code, one shared out-of-line indirect-branch lookup instead of one tail per
 * site, a return-address cache for returns, checks whose hit takes no branch (and the form of
 * them the host's defaults did not pick: LOOP on Intel, ADCX on AMD), 16-byte block
 * alignment, hot traces (with and without following indirect branches), huge pages for the code
 * cache. The guest runs with dbt's
 * defaults, then with one technique flipped at a time, and with all of them off; VMLAB_DBT is set
 * in this process before each guest's child is forked.
 *
 * Method: steady state, translation excluded - the guest calls the workload once for
 * DS_WARMUP iterations (everything gets translated and chained, hot loops become traces), marks,
 * calls it for N iterations, marks; the cost is the guest thread's CPU time between the marks, per
 * iteration. The native figure is the same two calls in a child process with the blob mapped at the
 * address the guest runs it from, CPU time of the second. Every configuration's checksum must equal
 * the native one or the cell says WRONG RESULT. Configurations alternate within each repetition
 * (drift hits all alike), the repetitions place the translated code at four offsets in turn
 * (ds_placement); medians. Code expansion is dbt's own statistic
 * (code_expansion_pct: host bytes written per guest byte translated).
 *
 * DynamoRIO, where it is installed (bench_drrun_path): the same two calls as the native child,
 * run by `drrun -- vmlab __compute-peer W N DS_WARMUP` (its defaults, no client), the process's
 * CPU time of the second call - the translator dbt's speed targets are stated against, on the
 * same host and in the same repetitions.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_internal.h"
#include "vmm/guest_layout.h"

#define DS_MAX_WORKLOADS 8
#define DS_WARMUP                                                                                  \
    100 /* iterations before the timed call: hot loops have become traces (threshold 50) */

/* The options of the "other check form" configuration, decided once the defaults' form on this
 * host is known (ds_options) */
static const char ds_other_check[] = "check_form=(the other fall-through form)";

/* The column of DynamoRIO (a Linux program under drrun, not a dbt configuration) */
static const char ds_dynamorio[] = "(DynamoRIO: not a VMLAB_DBT setting)";

static const struct {
    const char *name;    /* column name */
    const char *options; /* VMLAB_DBT, NULL: native; ds_dynamorio: DynamoRIO */
    const char *what;
} ds_configs[] = {
    {"native", NULL, "the blob as a Linux program"},
    {"dbt", "", "dbt's defaults: every technique on but align_blocks and huge_pages"},
    {"DynamoRIO", ds_dynamorio,
     "not dbt: the blob as a Linux program under DynamoRIO (drrun, its defaults, no client), "
     "where it is installed"},
    {"stubs inline", "stubs_apart=off", "exit stubs right after each block's code"},
    {"lookup per site", "ibl_shared=off", "the lookup's jump through the table at every site"},
    {"no return cache", "ret_cache=off", "returns take the lookup like other indirect branches"},
    {"taken checks", "fallthrough_checks=off",
     "lookup entries and return points check with a JRCXZ taken on every hit, instead of LOOP "
     "(AMD) or ADCX (Intel) falling through"},
    {"other check form", ds_other_check,
     "the check that falls through on a hit which the defaults did not pick on this host: LOOP "
     "where they use ADCX (Intel), ADCX where they use LOOP (AMD; needs ADX), LOOP where they "
     "use JRCXZ"},
    {"aligned blocks", "align_blocks=on", "every block starts 16-byte aligned"},
    {"traces", "traces=on",
     "hot loops become traces (NET): direct branches and returns to the trace's own calls "
     "followed"},
    {"traces + indirect", "traces=on,trace_indirect=on",
     "traces also follow indirect jumps, calls and other returns to the recorded target"},
    {"huge pages", "huge_pages=on", "MADV_HUGEPAGE asked for the code cache"},
    {"all off",
     "stubs_apart=off,ibl_shared=off,ret_cache=off,fallthrough_checks=off,align_blocks=on",
     "none of the techniques (stubs inline, lookup per site, no return cache, taken checks, "
     "aligned)"},
};
#define DS_CONFIGS (sizeof(ds_configs) / sizeof(ds_configs[0]))

struct ds_cell {
    bool measured;
    char why_not[BENCH_WHY_SIZE];
    struct bench_stats ns_per_iter;
    double expansion_pct, huge_kb;
    double host_bytes, guest_bytes; /* the same statistic's parts (blocks + stubs; translated) */
    double check_form; /* dbt's statistic check_form: 0 JRCXZ, 1 LOOP, 2 ADCX (dbt_lookup.c) */
};

struct dbt_speed_state {
    bool measured;
    char why_not[BENCH_WHY_SIZE];
    unsigned workload_count;
    const struct bench_workload *workload[DS_MAX_WORKLOADS];
    uint64_t iterations[DS_MAX_WORKLOADS];
    struct ds_cell cell[DS_MAX_WORKLOADS][DS_CONFIGS];
    struct ds_cell harness; /* dbt's defaults on an empty workload: what the harness alone costs */
    char other_check[32];   /* VMLAB_DBT of "other check form", "" until decided (ds_options) */
};

/* VMLAB_DBT of configuration k (NULL: native or DynamoRIO; "other check form": "" while
 * undecided) */
static const char *ds_options(const struct dbt_speed_state *st, unsigned k)
{
    if (ds_configs[k].options == ds_dynamorio)
        return NULL;
    return ds_configs[k].options == ds_other_check ? st->other_check : ds_configs[k].options;
}

static bool ds_is_dynamorio(unsigned k)
{
    return ds_configs[k].options == ds_dynamorio;
}

/* DynamoRIO: `drrun -- vmlab __compute-peer W N DS_WARMUP`, the process CPU time of the N
 * iterations after the warm-up (bench_peers.c). */
static int run_dynamorio(const struct bench_ctx *ctx, const struct bench_workload *w, uint64_t n,
                         double *ns, uint64_t *sum, char *why, size_t why_size)
{
    char count[32], warmup[32];
    snprintf(count, sizeof(count), "%llu", (unsigned long long)n);
    snprintf(warmup, sizeof(warmup), "%u", DS_WARMUP);
    char *argv[] = {(char *)bench_drrun_path(),
                    "--",
                    (char *)ctx->opt->self_exe,
                    "__compute-peer",
                    (char *)w->name,
                    count,
                    warmup,
                    NULL};
    return bench_run_peer_program(argv, BENCH_DRRUN_MISSING, BENCH_PEER_TIMEOUT_S, ns, sum, why,
                                  why_size);
}

static double thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Native: in a child, the blob at the guest's address (elsewhere if taken), warm-up call,
 * then N iterations timed. 0 with ns and the checksum of the timed call. */
static int run_native(const struct bench_workload *w, uint64_t n, double *ns, uint64_t *sum,
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
        bench_kernel_fn *kernel = bench_workload_map_native(w, true);
        if (!kernel)
            _exit(70);
        kernel(DS_WARMUP);
        double t0 = thread_cpu_ns();
        uint64_t s = kernel(n);
        double out[2] = {thread_cpu_ns() - t0, 0};
        memcpy(&out[1], &s, sizeof(s));
        _exit(write(fds[1], out, sizeof(out)) == sizeof(out) ? 0 : 1);
    }
    close(fds[1]);
    double in[2];
    ssize_t got = read(fds[0], in, sizeof(in));
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got != sizeof(in) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(why, why_size, "the native run failed");
        return -1;
    }
    *ns = in[0];
    memcpy(sum, &in[1], sizeof(*sum));
    return 0;
}

/* Guest: warm-up call; mark 1; N iterations; mark 2; checksum as two marks; exit. */
static int build_guest(const struct bench_workload *w, uint64_t n, struct bench_code *c)
{
    c->n = 0;
    c->overflow = false;
    BENCH_EMIT(c, 0xbf, DS_WARMUP, 0, 0, 0); /* mov edi, DS_WARMUP */
    BENCH_EMIT(c, 0xe8);                     /* call kernel */
    size_t call1 = c->n + 4;
    bench_emit_u32(c, 0);
    bench_emit_mark(c, 1);
    BENCH_EMIT(c, 0x48, 0xbf);
    bench_emit_u64(c, n); /* movabs rdi, n */
    BENCH_EMIT(c, 0xe8);  /* call kernel */
    size_t call2 = c->n + 4;
    bench_emit_u32(c, 0);
    BENCH_EMIT(c, 0x48, 0x89, 0xc3); /* mov rbx, rax */
    bench_emit_mark(c, 2);
    BENCH_EMIT(c, 0x89, 0xd8); /* mov eax, ebx */
    bench_emit_mark_eax(c);
    BENCH_EMIT(c, 0x48, 0x89, 0xd8, 0x48, 0xc1, 0xe8, 0x20); /* mov rax, rbx; shr rax, 32 */
    bench_emit_mark_eax(c);
    bench_emit_exit(c);
    while (c->n < 4096) /* the blob page-aligned, where the peers experiment runs it */
        BENCH_EMIT(c, 0xcc);
    int32_t rel1 = (int32_t)(c->n - call1), rel2 = (int32_t)(c->n - call2);
    memcpy(c->b + call1 - 4, &rel1, 4);
    memcpy(c->b + call2 - 4, &rel2, 4);
    bench_emit(c, w->blob, w->size);
    return c->overflow ? -1 : 0;
}

/* Where repetition `r` places the translated code: VMLAB_DBT cache_offset, 0, 16, 32, 48 bytes
 * in turn. On some cores the speed of the same code depends on where it lands relative to
 * 64-byte lines (an Intel Xeon ran the interpreter workload 1.26x-1.44x native with the whole
 * cache moved by 0-56 bytes), so a comparison made at one placement can measure the placement
 * instead of the technique (Mytkowicz et al., "Producing wrong data without doing anything
 * obviously wrong!", ASPLOS 2009). Every configuration of a repetition gets the same placement;
 * the medians are taken over placements. */
static unsigned ds_placement(unsigned r)
{
    return (r % 4) * 16;
}

/* Repetitions: the option's (3 with --quick) rounded up to a multiple of the four placements. */
static unsigned ds_repetitions(const struct bench_ctx *ctx)
{
    return ((ctx->opt->quick ? 3 : ctx->opt->repetitions) + 3) & ~3u;
}

/* One guest run under VMLAB_DBT=options: CPU ns of the N iterations, checksum, and into
 * `cell` dbt's statistics (expansion, huge pages, check form). */
static int run_guest(const struct backend_ops *dbt, const struct bench_code *c, const char *options,
                     double *ns, uint64_t *sum, struct ds_cell *cell)
{
    setenv("VMLAB_DBT", options, 1); /* read by the vCPU in the child */
    struct bench_marks marks = {.cpu_time = true};
    struct machine_result *r =
        bench_run_guest_marks(dbt, c, 300.0, 4, &marks, cell->why_not, sizeof(cell->why_not));
    unsetenv("VMLAB_DBT");
    if (!r)
        return -1;
    *ns = (double)(r->mark_cpu_ns[1] - r->mark_cpu_ns[0]);
    *sum = ((uint64_t)r->mark_value[3] << 32) | r->mark_value[2];
    cell->expansion_pct = cell->huge_kb = 0;
    cell->check_form = -1;
    double block_bytes = 0, stub_bytes = 0;
    bench_result_stat(r, "host_block_bytes", &block_bytes);
    bench_result_stat(r, "host_stub_bytes", &stub_bytes);
    cell->host_bytes = block_bytes + stub_bytes;
    cell->guest_bytes = 0;
    bench_result_stat(r, "guest_bytes_translated", &cell->guest_bytes);
    bench_result_stat(r, "code_expansion_pct", &cell->expansion_pct);
    bench_result_stat(r, "code_cache_huge_kb", &cell->huge_kb);
    bench_result_stat(r, "check_form", &cell->check_form);
    free(r);
    return 0;
}

static void dbt_speed_measure(struct bench_ctx *ctx, void *state)
{
    struct dbt_speed_state *st = state;
    const struct bench_host *h = &ctx->host;
    int dbt = bench_backend_index(h, "dbt");
    if (dbt < 0 || !h->backend_available[dbt]) {
        snprintf(st->why_not, sizeof(st->why_not), "dbt unavailable");
        return;
    }
    unsigned count;
    const struct bench_workload *wl = bench_workloads(&count);
    st->workload_count = count < DS_MAX_WORKLOADS ? count : DS_MAX_WORKLOADS;
    unsigned reps = ds_repetitions(ctx);
    double budget_ns = ctx->opt->quick ? 0.1e9 : 0.4e9; /* per dbt run */
    static struct bench_code code;
    /* The harness (marks, calls, exit) with an empty workload: its translation is subtracted
     * from each workload's for the expansion of the workload's own code (ds_workload_expansion) */
    static const unsigned char empty_blob[] = {0x31, 0xc0, 0xc3}; /* xor eax, eax; ret */
    const struct bench_workload empty = {"empty", "", empty_blob, sizeof(empty_blob)};
    double harness_ns;
    uint64_t harness_sum;
    if (build_guest(&empty, 20, &code) == 0 &&
        run_guest(h->backend[dbt], &code, "", &harness_ns, &harness_sum, &st->harness) == 0)
        st->harness.measured = true;
    /* The fall-through check form the defaults did not pick here (dbt_cache.c probe_check_form:
     * 0 JRCXZ, 1 LOOP, 2 ADCX): what a reader on this host would ask about next */
    if (st->harness.measured && st->harness.check_form >= 0)
        snprintf(st->other_check, sizeof(st->other_check), "check_form=%s",
                 st->harness.check_form == 1 ? "adcx" : "loop");
    for (unsigned i = 0; i < st->workload_count; i++) {
        const struct bench_workload *w = st->workload[i] = &wl[i];
        bench_progress(ctx, "bench: dbt_speed %-12s ", w->name);
        /* calibrate on the defaults */
        double ns;
        uint64_t sum, n = 20;
        struct ds_cell probe = {0};
        if (build_guest(w, n, &code) < 0)
            snprintf(probe.why_not, sizeof(probe.why_not), "the guest did not fit");
        if (probe.why_not[0] || run_guest(h->backend[dbt], &code, "", &ns, &sum, &probe) < 0) {
            for (unsigned k = 0; k < DS_CONFIGS; k++)
                snprintf(st->cell[i][k].why_not, sizeof(st->cell[i][k].why_not), "%s",
                         probe.why_not);
            bench_progress(ctx, "%s\n", probe.why_not);
            continue;
        }
        double per = ns / (double)n;
        n = per > 0 ? (uint64_t)(budget_ns / per) : 1000;
        if (n < 20)
            n = 20;
        st->iterations[i] = n;
        if (build_guest(w, n, &code) < 0)
            continue;
        double samples[DS_CONFIGS][32];
        unsigned got[DS_CONFIGS] = {0};
        uint64_t want = 0;
        bool have_want = false;
        for (unsigned r = 0; r < reps; r++) {
            for (unsigned k = 0; k < DS_CONFIGS; k++) {
                struct ds_cell *cell = &st->cell[i][k];
                const char *config = ds_options(st, k);
                if (config && !config[0] && k > 1)
                    snprintf(cell->why_not, sizeof(cell->why_not),
                             "the defaults' check form is unknown (the harness run failed)");
                if (cell->why_not[0])
                    continue;
                char options[256];
                if (config)
                    snprintf(options, sizeof(options), "%s%scache_offset=%u", config,
                             config[0] ? "," : "", ds_placement(r));
                int rc =
                    config ? run_guest(h->backend[dbt], &code, options, &ns, &sum, cell)
                    : ds_is_dynamorio(k)
                        ? run_dynamorio(ctx, w, n, &ns, &sum, cell->why_not, sizeof(cell->why_not))
                        : run_native(w, n, &ns, &sum, cell->why_not, sizeof(cell->why_not));
                if (rc < 0)
                    continue;
                if (k == 0) {
                    want = sum;
                    have_want = true;
                } else if (have_want && sum != want) {
                    snprintf(cell->why_not, sizeof(cell->why_not),
                             "WRONG RESULT: checksum %#llx, native %#llx", (unsigned long long)sum,
                             (unsigned long long)want);
                    continue;
                }
                samples[k][got[k]++] = ns / (double)n;
            }
            bench_progress(ctx, ".");
        }
        for (unsigned k = 0; k < DS_CONFIGS; k++) {
            struct ds_cell *cell = &st->cell[i][k];
            if (cell->why_not[0] || got[k] != reps) {
                if (!cell->why_not[0])
                    snprintf(cell->why_not, sizeof(cell->why_not), "a run failed");
                continue;
            }
            bench_stats_of(samples[k], got[k], &cell->ns_per_iter);
            cell->measured = true;
        }
        bench_progress(ctx, " dbt %.2fx native\n",
                       st->cell[i][0].measured && st->cell[i][1].measured
                           ? st->cell[i][1].ns_per_iter.median / st->cell[i][0].ns_per_iter.median
                           : 0);
    }
    st->measured = true;
}

static double ds_ratio(const struct dbt_speed_state *st, unsigned i, unsigned k)
{
    const struct ds_cell *n = &st->cell[i][0], *c = &st->cell[i][k];
    return n->measured && c->measured && n->ns_per_iter.median > 0
               ? c->ns_per_iter.median / n->ns_per_iter.median
               : 0;
}

/* Code expansion of workload i's own code under dbt's defaults: host bytes over guest bytes
 * translated, the harness's (an empty workload's run) subtracted from both - the harness's
 * marks are VMM exits with their stubs, ~80 guest bytes at 3.7x that weigh on a small workload's
 * figure and say nothing about it. 0 if not measured. */
static double ds_workload_expansion(const struct dbt_speed_state *st, unsigned i)
{
    const struct ds_cell *c = &st->cell[i][1], *e = &st->harness;
    if (!c->measured || !e->measured || c->guest_bytes <= e->guest_bytes)
        return 0;
    return (c->host_bytes - e->host_bytes) / (c->guest_bytes - e->guest_bytes);
}

static void dbt_speed_write_files(struct bench_ctx *ctx, const void *state)
{
    const struct dbt_speed_state *st = state;
    FILE *f = bench_file_open(ctx, "dbt_speed.csv");
    if (f) {
        fprintf(f, "workload,config,options,iterations,measured,median_ns_per_iteration,q1,q3,"
                   "vs_native,code_expansion_pct,workload_expansion_pct,code_cache_huge_kb,note\n");
        for (unsigned i = 0; i < st->workload_count; i++)
            for (unsigned k = 0; k < DS_CONFIGS; k++) {
                const struct ds_cell *c = &st->cell[i][k];
                fprintf(f, "%s,\"%s\",\"%s\",%llu,", st->workload[i]->name, ds_configs[k].name,
                        ds_options(st, k)    ? ds_options(st, k)
                        : ds_is_dynamorio(k) ? "drrun"
                                             : "",
                        (unsigned long long)st->iterations[i]);
                if (c->measured && ds_options(st, k))
                    fprintf(f, "yes,%.2f,%.2f,%.2f,%.3f,%.0f,%.0f,%.0f,\n", c->ns_per_iter.median,
                            c->ns_per_iter.q1, c->ns_per_iter.q3, ds_ratio(st, i, k),
                            c->expansion_pct, k == 1 ? 100 * ds_workload_expansion(st, i) : 0,
                            c->huge_kb);
                else if (c->measured) /* native, DynamoRIO: no dbt statistics */
                    fprintf(f, "yes,%.2f,%.2f,%.2f,%.3f,,,,\n", c->ns_per_iter.median,
                            c->ns_per_iter.q1, c->ns_per_iter.q3, ds_ratio(st, i, k));
                else
                    fprintf(f, "no,,,,,,,,\"%s\"\n", c->why_not);
            }
        bench_file_close(ctx, f);
    }
    f = bench_file_open(ctx, "dbt_speed.dat");
    if (f) {
        fprintf(f, "workload");
        for (unsigned k = 1; k < DS_CONFIGS; k++)
            fprintf(f, " \"%s\"", ds_configs[k].name);
        fputc('\n', f);
        for (unsigned i = 0; i < st->workload_count; i++) {
            fprintf(f, "\"%s\"", st->workload[i]->name);
            for (unsigned k = 1; k < DS_CONFIGS; k++) {
                double r = ds_ratio(st, i, k);
                fprintf(f, r > 0 ? " %.3f" : " NaN", r);
            }
            fputc('\n', f);
        }
        bench_file_close(ctx, f);
    }
    char caption[1024]; /* bench_caption's, with this experiment's repetitions (ds_repetitions) */
    const struct bench_host *h = &ctx->host;
    snprintf(caption, sizeof(caption),
             "%s, %s; %u repetitions per point over four code placements (%s); %s", h->cpu,
             h->kernel, ds_repetitions(ctx), ctx->opt->quick ? "--quick" : "full run", h->date);
    f = bench_file_open(ctx, "dbt_speed.gp");
    if (f) {
        fprintf(f,
                "set datafile missing 'NaN'\nset style data histograms\n"
                "set style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
                "set grid ytics\nset ylabel 'time per iteration / native (1.0)'\n"
                "set yrange [0:*]\nset key outside right top\n"
                "set title \"dbt's speed techniques, one flipped at a time, and DynamoRIO: time "
                "relative to native\\n%s\" font ',10'\n",
                caption);
        /* a colour per configuration: gnuplot's default cycle has eight */
        static const char *const colours[] = {"#6a3d9a", "#1b9e77", "#56b4e9", "#e69f00",
                                              "#f0e442", "#0072b2", "#d55e00", "#333333",
                                              "#cc79a7", "#999999", "#a6761d", "#66a61e"};
        _Static_assert(DS_CONFIGS - 1 <= sizeof(colours) / sizeof(colours[0]),
                       "a colour for every configuration");
        fprintf(f,
                "set terminal png size 1200,650 noenhanced\nset output 'dbt_speed.png'\n"
                "plot 'dbt_speed.dat' using 2:xtic(1) title columnheader(2) lc rgb '%s'",
                colours[0]);
        for (unsigned k = 2; k < DS_CONFIGS; k++)
            fprintf(f, ", '' using %u title columnheader(%u) lc rgb '%s'", k + 1, k + 1,
                    colours[k - 1]);
        fprintf(f, "\nset terminal svg size 1200,650 noenhanced\nset output 'dbt_speed.svg'\n"
                   "replot\n");
        bench_file_close(ctx, f);
        bench_plot(ctx, "dbt_speed.gp");
    }
}

static void dbt_speed_write_section(struct bench_ctx *ctx, const void *state, struct bench_doc *d)
{
    const struct dbt_speed_state *st = state;
    bench_doc_heading(d, "dbt: the speed techniques, each on and off");
    if (!st->measured) {
        bench_doc_para(d, "Not measured: %s.", st->why_not);
        return;
    }
    bench_doc_figure(d, "dbt_speed.png",
                     "dbt time per iteration relative to native, per "
                     "technique flipped");
    char harness[96] = "not measured in this run";
    if (st->harness.measured)
        snprintf(harness, sizeof(harness), "here %.0f guest bytes translated into %.0f host bytes",
                 st->harness.guest_bytes, st->harness.host_bytes);
    bench_doc_para(d,
                   "Each workload of the peers comparison under dbt with its defaults, then with "
                   "one technique flipped (VMLAB_DBT), and with all of them off: time per "
                   "iteration relative to native, in steady state (a first call of %u iterations "
                   "translates everything and forms the traces; the guest thread's CPU time of the "
                   "second, longer call; native: "
                   "the same two calls in a child process, the blob at the guest's address). "
                   "Medians of %u interleaved repetitions, which place the translated code 0, "
                   "16, 32 and 48 bytes further into the cache in turn (VMLAB_DBT "
                   "cache_offset): on some cores where code lands relative to 64-byte lines "
                   "alone moves these ratios by several percent, so each figure is taken over "
                   "placements, not at one. Code expansion: host bytes written per "
                   "guest byte translated (blocks, exit stubs, lookup entries), dbt's "
                   "code_expansion_pct, for the whole run; and for the workload's own code, "
                   "with what the harness alone costs subtracted from both (a run of an empty "
                   "workload: the harness's marks are VMM exits with their stubs, %s, which "
                   "weigh on a small workload's figure). DynamoRIO (not dbt; where drrun is "
                   "installed): the native child's two calls run by drrun with its defaults "
                   "and no client, the process's CPU time of the second - the translator "
                   "dbt's speed targets are stated against, on this host in the same "
                   "repetitions. Data: dbt_speed.csv.",
                   DS_WARMUP, ds_repetitions(ctx), harness);
    bench_doc_table(d, 3, (const char *[]){"setting", "VMLAB_DBT", "what it is"});
    for (unsigned k = 1; k < DS_CONFIGS; k++) {
        bench_doc_cell(d, "%s", ds_configs[k].name);
        const char *config = ds_options(st, k);
        bench_doc_cell(d, "%s",
                       !config     ? "(none: drrun)"
                       : config[0] ? config
                       : k == 1    ? "(defaults)"
                                   : "(not decided)");
        bench_doc_cell(d, "%s", ds_configs[k].what);
    }
    bench_doc_table_end(d);
    const char *heads[3 + DS_CONFIGS];
    heads[0] = "workload";
    for (unsigned k = 0; k < DS_CONFIGS; k++)
        heads[1 + k] = ds_configs[k].name;
    heads[1 + DS_CONFIGS] = "code expansion (dbt)";
    heads[2 + DS_CONFIGS] = "expansion, workload code";
    bench_doc_table(d, 3 + DS_CONFIGS, heads);
    for (unsigned i = 0; i < st->workload_count; i++) {
        bench_doc_cell(d, "%s", st->workload[i]->name);
        for (unsigned k = 0; k < DS_CONFIGS; k++) {
            const struct ds_cell *c = &st->cell[i][k];
            if (!c->measured && ds_is_dynamorio(k) && strstr(c->why_not, "not installed"))
                bench_doc_cell(d, "%s", "not installed (below)");
            else if (!c->measured)
                bench_doc_cell(d, "not measured: %s", c->why_not);
            else if (k == 0)
                bench_doc_cell(d, "%.0f ns", c->ns_per_iter.median);
            else
                bench_doc_cell(d, "%.2fx", ds_ratio(st, i, k));
        }
        const struct ds_cell *c = &st->cell[i][1];
        if (c->measured)
            bench_doc_cell(d, "%.2fx", c->expansion_pct / 100.0);
        else
            bench_doc_cell(d, "%s", "");
        double own = ds_workload_expansion(st, i);
        if (own > 0)
            bench_doc_cell(d, "%.2fx", own);
        else
            bench_doc_cell(d, "%s", "");
    }
    bench_doc_table_end(d);
    for (unsigned k = 0; k < DS_CONFIGS && st->workload_count; k++)
        if (ds_is_dynamorio(k) && !st->cell[0][k].measured &&
            strstr(st->cell[0][k].why_not, "not installed"))
            bench_doc_para(d, "DynamoRIO: not measured, %s.", st->cell[0][k].why_not);
    static const char *const form_names[] = {"JRCXZ, taken on every hit",
                                             "LOOP, falling through on a hit (AMD)",
                                             "ADCX, falling through on a hit (ADX, Intel)"};
    const struct ds_cell *defaults = st->workload_count ? &st->cell[0][1] : NULL;
    if (defaults && defaults->measured && defaults->check_form >= 0 && defaults->check_form < 3)
        bench_doc_para(d,
                       "Checks: with dbt's defaults on this host, lookup entries and return "
                       "points check their target with %s; \"taken checks\" is JRCXZ, "
                       "\"other check form\" %s.",
                       form_names[(int)defaults->check_form], st->other_check);
    unsigned huge = 0; /* the huge pages configuration */
    for (unsigned k = 1; k < DS_CONFIGS; k++)
        if (ds_configs[k].options && !strcmp(ds_configs[k].options, "huge_pages=on"))
            huge = k;
    for (unsigned i = 0; i < st->workload_count && huge; i++) {
        const struct ds_cell *c = &st->cell[i][huge];
        if (c->measured && !strcmp(st->workload[i]->name, "footprint"))
            bench_doc_para(d,
                           "Huge pages: with MADV_HUGEPAGE the kernel mapped %.0f KiB of the "
                           "code cache with huge pages (footprint workload). The cache is a "
                           "memfd mapped twice (W^X), so it gets huge pages only where "
                           "/sys/kernel/mm/transparent_hugepage/shmem_enabled allows them.",
                           c->huge_kb);
    }
}

static void dbt_speed_write_json(struct bench_ctx *ctx, const void *state, FILE *f)
{
    (void)ctx;
    const struct dbt_speed_state *st = state;
    bench_json_key(f, "dbt_speed");
    if (!st->measured) {
        bench_json_not_measured(f, st->why_not);
        return;
    }
    fputc('[', f);
    for (unsigned i = 0; i < st->workload_count; i++) {
        fprintf(f, "%s{\"workload\": ", i ? ", " : "");
        bench_json_str(f, st->workload[i]->name);
        fprintf(f, ", \"iterations\": %llu, \"configs\": [", (unsigned long long)st->iterations[i]);
        for (unsigned k = 0; k < DS_CONFIGS; k++) {
            const struct ds_cell *c = &st->cell[i][k];
            fprintf(f, "%s{\"config\": ", k ? ", " : "");
            bench_json_str(f, ds_configs[k].name);
            fprintf(f, ", \"options\": ");
            bench_json_str(f, ds_options(st, k)    ? ds_options(st, k)
                              : ds_is_dynamorio(k) ? "drrun"
                                                   : "native");
            fprintf(f, ", \"ns_per_iteration\": ");
            if (c->measured) {
                bench_json_stats(f, &c->ns_per_iter);
                fprintf(f, ", \"vs_native\": %.4f", ds_ratio(st, i, k));
                if (ds_options(st, k))
                    fprintf(f, ", \"code_expansion_pct\": %.0f, \"code_cache_huge_kb\": %.0f",
                            c->expansion_pct, c->huge_kb);
                if (k == 1)
                    fprintf(f, ", \"workload_expansion_pct\": %.0f",
                            100 * ds_workload_expansion(st, i));
            } else {
                bench_json_not_measured(f, c->why_not);
            }
            fputc('}', f);
        }
        fprintf(f, "]}");
    }
    fputc(']', f);
}

const struct bench_experiment bench_experiment_dbt_speed = {
    .name = "dbt_speed",
    .summary = "dbt's speed techniques, each on and off, on every workload; code expansion",
    .state_size = sizeof(struct dbt_speed_state),
    .measure = dbt_speed_measure,
    .write_files = dbt_speed_write_files,
    .write_section = dbt_speed_write_section,
    .write_json = dbt_speed_write_json,
};
