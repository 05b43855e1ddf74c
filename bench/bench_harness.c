/* bench_harness.c - `vmlab bench`: host facts, the registered experiments, the report.
 *
 * Order: create the output folder (with its parents) before measuring anything, so that a
 * folder that cannot be written costs seconds, not minutes; measure the host; run each
 * experiment of bench/experiments.def (or those named by --only); write results.json, each
 * experiment's files, index.md and index.html; render the registered gnuplot scripts; check
 * that every figure the documents link exists and is not empty. Every failure is reported with
 * the file it concerns and makes bench_run return -1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_internal.h"

#define BENCH_EXPERIMENT(id) extern const struct bench_experiment bench_experiment_##id;
#include "experiments.def"
#undef BENCH_EXPERIMENT

static const struct bench_experiment *const experiments[] = {
#define BENCH_EXPERIMENT(id) &bench_experiment_##id,
#include "experiments.def"
#undef BENCH_EXPERIMENT
};

const struct bench_experiment *const *bench_experiments(unsigned *count)
{
    *count = sizeof(experiments) / sizeof(experiments[0]);
    return experiments;
}

void bench_progress(const struct bench_ctx *ctx, const char *fmt, ...)
{
    (void)ctx;
    static int tty = -1;
    if (tty < 0)
        tty = isatty(STDERR_FILENO);
    if (!tty)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static void report_error(struct bench_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void report_error(struct bench_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    ctx->errors++;
}

FILE *bench_file_open(struct bench_ctx *ctx, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", ctx->opt->out_dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        report_error(ctx, "cannot write %s: %s", path, strerror(errno));
    return f;
}

void bench_file_close(struct bench_ctx *ctx, FILE *f)
{
    if (!f)
        return;
    bool bad = ferror(f) != 0;
    int saved = errno;
    if (fclose(f) != 0) {
        bad = true;
        saved = errno;
    }
    if (bad)
        report_error(ctx, "writing a file in %s failed: %s", ctx->opt->out_dir, strerror(saved));
}

void bench_plot(struct bench_ctx *ctx, const char *script)
{
    if (ctx->plot_count == sizeof(ctx->plots) / sizeof(ctx->plots[0])) {
        report_error(ctx, "too many figures: %s not drawn", script);
        return;
    }
    snprintf(ctx->plots[ctx->plot_count++], sizeof(ctx->plots[0]), "%s", script);
}

const void *bench_state(const struct bench_ctx *ctx, const char *name)
{
    unsigned count;
    const struct bench_experiment *const *list = bench_experiments(&count);
    for (unsigned i = 0; i < count; i++)
        if (!strcmp(list[i]->name, name))
            return ctx->states[i];
    return NULL;
}

void bench_caption(const struct bench_ctx *ctx, char *buf, size_t size)
{
    const struct bench_host *h = &ctx->host;
    snprintf(buf, size, "%s, %s; %u repetitions per point (%s); %s", h->cpu, h->kernel,
             ctx->opt->repetitions, ctx->opt->quick ? "--quick" : "full run", h->date);
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[1024];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char saved = *p;
        *p = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = saved;
        if (!saved)
            break;
    }
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (access(path, W_OK) < 0)
        return -errno;
    return 0;
}

static bool selected(const struct bench_options *o, const char *name)
{
    if (!o->only)
        return true;
    size_t len = strlen(name);
    for (const char *p = o->only; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && !strncmp(p, name, n))
            return true;
        p += n + (comma != NULL);
    }
    return false;
}

static void write_host_json(const struct bench_ctx *ctx, FILE *f)
{
    const struct bench_host *h = &ctx->host;
    fprintf(f, "{\n  \"host\": {\"cpu\": ");
    bench_json_str(f, h->cpu);
    fprintf(f, ", \"kernel\": ");
    bench_json_str(f, h->kernel);
    fprintf(f, ", \"date\": ");
    bench_json_str(f, h->date);
    fprintf(f, ", \"mode\": \"%s\", \"tsc_ghz\": %.4f, \"repetitions\": %u,\n    ",
            ctx->opt->quick ? "quick" : "full", h->tsc_ghz, ctx->opt->repetitions);
    fprintf(f, "\"signal_round_trip_ns\": ");
    bench_json_stats(f, &h->signal_round_trip_ns);
    fprintf(f, ", \"getppid_ns\": ");
    bench_json_stats(f, &h->syscall_ns);
    fprintf(f, ", \"kvm_is_pvm\": %s,\n    \"backends\": [", h->kvm_is_pvm ? "true" : "false");
    for (unsigned b = 0; b < h->backend_count; b++) {
        fprintf(f, "%s{\"name\": ", b ? ", " : "");
        bench_json_str(f, h->backend_name[b]);
        fprintf(f, ", \"available\": %s, \"note\": ", h->backend_available[b] ? "true" : "false");
        bench_json_str(f, h->backend_note[b]);
        fputc('}', f);
    }
    fprintf(f, "]}");
}

static void write_host_section(const struct bench_ctx *ctx, struct bench_doc *d)
{
    const struct bench_host *h = &ctx->host;
    bench_doc_para(d,
                   "Host: %s, %s. Date: %s. TSC: %.3f GHz (measured against CLOCK_MONOTONIC). "
                   "Repetitions: %u per measurement; medians with Q1-Q3 and min-max. Generated "
                   "by `vmlab bench%s`. Method and how to read each table: docs/REPORT.md.",
                   h->cpu, h->kernel, h->date, h->tsc_ghz, ctx->opt->repetitions,
                   ctx->opt->quick ? " --quick" : "");
    bench_doc_heading(d, "Backends on this host");
    for (unsigned b = 0; b < h->backend_count; b++) {
        char note[1024] = "";
        size_t len = 0;
        for (const char *c = h->backend_note[b]; *c && len + 3 < sizeof(note); c++)
            if (*c == '\n') {
                if (c[1]) /* lines become "; "-separated clauses */
                    len += (size_t)snprintf(note + len, sizeof(note) - len, "; ");
            } else {
                note[len++] = *c;
                note[len] = 0;
            }
        if (h->backend_available[b])
            bench_doc_item(d, "**%s**: available: %s.%s%s", h->backend_name[b],
                           h->backend[b]->summary, note[0] ? " " : "", note);
        else
            bench_doc_item(d, "**%s**: not measured: unavailable: %s", h->backend_name[b], note);
    }
    if (h->kvm_is_pvm)
        bench_doc_para(d, "**This host's /dev/kvm is PVM** (kvm_pvm): a software hypervisor, "
                          "not VT-x/AMD-V. Every vtx figure below measures PVM, never hardware "
                          "virtualization.");
    bench_doc_heading(d, "Kernel floor");
    bench_doc_para(d,
                   "An empty signal round trip on this host (CLI at CPL 3 -> #GP -> SIGSEGV -> "
                   "handler that only skips it -> sigreturn): median %.0f ns (Q1 %.0f, Q3 %.0f). "
                   "A getppid system call: median %.0f ns. Every trap_emulate trap pays at least "
                   "the first.",
                   h->signal_round_trip_ns.median, h->signal_round_trip_ns.q1,
                   h->signal_round_trip_ns.q3, h->syscall_ns.median);
}

/* Every figure the documents link must exist and not be empty. */
static void check_figures(struct bench_ctx *ctx, const struct bench_doc *d)
{
    for (unsigned i = 0; i < d->figure_count; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", ctx->opt->out_dir, d->figures[i]);
        struct stat st;
        if (stat(path, &st) < 0 || st.st_size == 0)
            report_error(ctx, "figure %s was not drawn (see %s/gnuplot.log)", path,
                         ctx->opt->out_dir);
    }
}

static void render_plots(struct bench_ctx *ctx)
{
    char log[1024];
    snprintf(log, sizeof(log), "%s/gnuplot.log", ctx->opt->out_dir);
    FILE *lf = fopen(log, "w");
    if (lf)
        fclose(lf);
    for (unsigned i = 0; i < ctx->plot_count; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            report_error(ctx, "cannot run gnuplot: %s", strerror(errno));
            return;
        }
        if (pid == 0) {
            if (chdir(ctx->opt->out_dir) < 0 || !freopen("gnuplot.log", "a", stderr) ||
                !freopen("/dev/null", "w", stdout))
                _exit(126);
            execlp("gnuplot", "gnuplot", ctx->plots[i], (char *)NULL);
            _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
            report_error(ctx, "gnuplot is not installed (a required dependency): "
                              "apt-get install gnuplot-nox, or run scripts/install-deps.sh report");
            return;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            report_error(ctx, "gnuplot %s/%s failed (see %s)", ctx->opt->out_dir, ctx->plots[i],
                         log);
    }
}

int bench_run(const struct bench_options *o)
{
    struct bench_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return -1;
    ctx->opt = o;
    int rc = make_dirs(o->out_dir);
    if (rc < 0) {
        fprintf(stderr, "bench: error: cannot create the output folder %s: %s\n", o->out_dir,
                strerror(-rc));
        free(ctx);
        return -1;
    }
    unsigned count;
    const struct bench_experiment *const *list = bench_experiments(&count);
    void **state = ctx->states;
    bench_progress(ctx, "bench: host facts and kernel floor\n");
    bench_measure_host(&ctx->host, o);
    for (unsigned i = 0; i < count; i++) {
        if (!selected(o, list[i]->name))
            continue;
        state[i] = calloc(1, list[i]->state_size ? list[i]->state_size : 1);
        if (!state[i]) {
            report_error(ctx, "out of memory for experiment %s", list[i]->name);
            continue;
        }
        list[i]->measure(ctx, state[i]);
    }

    FILE *json = bench_file_open(ctx, "results.json");
    if (json) {
        write_host_json(ctx, json);
        for (unsigned i = 0; i < count; i++)
            if (state[i] && list[i]->write_json)
                list[i]->write_json(ctx, state[i], json);
        fprintf(json, "\n}\n");
        bench_file_close(ctx, json);
    }
    for (unsigned i = 0; i < count; i++)
        if (state[i] && list[i]->write_files)
            list[i]->write_files(ctx, state[i]);

    struct bench_doc doc = {0};
    doc.md = bench_file_open(ctx, "index.md");
    doc.html = bench_file_open(ctx, "index.html");
    if (doc.md && doc.html) {
        bench_doc_begin(&doc, "vmlab: three virtualization techniques side by side");
        write_host_section(ctx, &doc);
        for (unsigned i = 0; i < count; i++)
            if (state[i])
                list[i]->write_section(ctx, state[i], &doc);
        bench_doc_end(&doc);
    }
    bench_file_close(ctx, doc.md);
    bench_file_close(ctx, doc.html);

    if (!ctx->errors)
        render_plots(ctx);
    if (!ctx->errors)
        check_figures(ctx, &doc);
    for (unsigned i = 0; i < count; i++)
        free(state[i]);
    unsigned errors = ctx->errors;
    free(ctx);
    return errors ? -1 : 0;
}
