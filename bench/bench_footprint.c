/* bench_footprint.c - experiment "footprint": code footprint x repetitions, which technique
 * wins. A guest of N distinct blocks, each holding one CLI, the whole chain executed r times:
 * dbt pays B for every block (innocuous instructions included) before the first execution,
 * trap-and-emulate pays h on every execution. Figure footprint.png: trap time / dbt time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"

#define FOOT_N 4
#define FOOT_R 5
static const unsigned foot_blocks[FOOT_N] = {1, 16, 256, 2048};
static const unsigned foot_reps[FOOT_R] = {1, 2, 4, 16, 64};

struct footprint_state {
    bool measured;
    char why_not[BENCH_WHY_SIZE];
    double trap_ns[FOOT_N][FOOT_R], dbt_ns[FOOT_N][FOOT_R]; /* medians */
};

static void footprint_measure(struct bench_ctx *ctx, void *state)
{
    struct footprint_state *fp = state;
    const struct bench_host *h = &ctx->host;
    int trap = bench_backend_index(h, "trap_emulate"), dbt = bench_backend_index(h, "dbt");
    if (trap < 0 || dbt < 0 || !h->backend_available[trap] || !h->backend_available[dbt]) {
        snprintf(fp->why_not, sizeof(fp->why_not), "needs both trap_emulate and dbt");
        return;
    }
    bench_progress(ctx, "bench: footprint x repetitions ");
    static struct bench_code c;
    unsigned reps = ctx->opt->quick ? 1 : 3;
    for (unsigned i = 0; i < FOOT_N; i++)
        for (unsigned j = 0; j < FOOT_R; j++) {
            bench_build_block_chain(foot_blocks[i], foot_reps[j], &c);
            double t[8], d[8];
            for (unsigned r = 0; r < reps; r++) {
                const int which[2] = {trap, dbt};
                double *out[2] = {&t[r], &d[r]};
                for (unsigned k = 0; k < 2; k++) {
                    static const struct bench_marks cpu = {.cpu_time = true};
                    struct machine_result *res = bench_run_guest_marks(
                        h->backend[which[k]], &c, 60, 2, &cpu, fp->why_not, sizeof(fp->why_not));
                    if (!res) {
                        bench_progress(ctx, "failed: %s\n", fp->why_not);
                        return;
                    }
                    *out[k] = (double)(res->mark_cpu_ns[1] - res->mark_cpu_ns[0]);
                    free(res);
                }
            }
            fp->trap_ns[i][j] = bench_median(t, reps);
            fp->dbt_ns[i][j] = bench_median(d, reps);
            bench_progress(ctx, ".");
        }
    fp->measured = true;
    bench_progress(ctx, "\n");
}

static void footprint_write_files(struct bench_ctx *ctx, const void *state)
{
    const struct footprint_state *fp = state;
    FILE *f = bench_file_open(ctx, "footprint.csv");
    if (f) {
        fprintf(f, "blocks,repetitions,trap_ns,dbt_ns,winner\n");
        if (!fp->measured)
            fprintf(f, ",,,,\"not measured: %s\"\n", fp->why_not);
        else
            for (unsigned i = 0; i < FOOT_N; i++)
                for (unsigned j = 0; j < FOOT_R; j++)
                    fprintf(f, "%u,%u,%.0f,%.0f,%s\n", foot_blocks[i], foot_reps[j],
                            fp->trap_ns[i][j], fp->dbt_ns[i][j],
                            fp->dbt_ns[i][j] < fp->trap_ns[i][j] ? "dbt" : "trap_emulate");
        bench_file_close(ctx, f);
    }
    if (!fp->measured)
        return;
    f = bench_file_open(ctx, "footprint.dat");
    if (f) {
        for (unsigned i = 0; i < FOOT_N; i++)
            for (unsigned j = 0; j < FOOT_R; j++)
                fprintf(f, "%u %u %.3f\n", j, i, fp->trap_ns[i][j] / fp->dbt_ns[i][j]);
        bench_file_close(ctx, f);
    }
    char caption[1024];
    bench_caption(ctx, caption, sizeof(caption));
    f = bench_file_open(ctx, "footprint.gp");
    if (!f)
        return;
    /* colour scale: symmetric in log around 1 (white), wide enough for every cell */
    double lo = 1, hi = 1;
    for (unsigned i = 0; i < FOOT_N; i++)
        for (unsigned j = 0; j < FOOT_R; j++) {
            double v = fp->trap_ns[i][j] / fp->dbt_ns[i][j];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    double span = fmax(hi, 1 / lo) * 1.5;
    fprintf(f,
            "set title \"Which technique wins? Each cell: trap_emulate time / dbt time for the "
            "whole guest (blue, > 1: dbt faster; red, < 1: trap_emulate faster)\\n"
            "N distinct blocks of one CLI each (translated once by dbt), the chain executed r "
            "times; median of %u runs, guest thread CPU time\\n%s\" font ',10'\n"
            "set xlabel 'r: executions of every block'\nset ylabel 'N: code footprint "
            "(distinct blocks)'\nset cblabel 'trap_emulate time / dbt time (log scale)'\n"
            "set logscale cb\nset palette defined (0 '#b2182b', 1 '#f7f7f7', 2 '#2166ac')\n"
            "set cbrange [%g:%g]\nset xrange [-0.5:%d.5]\nset yrange [-0.5:%d.5]\n",
            ctx->opt->quick ? 1 : 3, caption, 1 / span, span, FOOT_R - 1, FOOT_N - 1);
    fprintf(f, "set xtics (");
    for (unsigned j = 0; j < FOOT_R; j++)
        fprintf(f, "%s'%u' %u", j ? ", " : "", foot_reps[j], j);
    fprintf(f, ")\nset ytics (");
    for (unsigned i = 0; i < FOOT_N; i++)
        fprintf(f, "%s'%u' %u", i ? ", " : "", foot_blocks[i], i);
    fprintf(f, ")\n");
    const char *fmts[] = {"pngcairo size 1400,800 noenhanced", "svg size 1400,800 noenhanced"};
    const char *exts[] = {"png", "svg"};
    for (int t = 0; t < 2; t++) {
        fprintf(f, "set terminal %s\nset output 'footprint.%s'\n", fmts[t], exts[t]);
        fprintf(f, "plot 'footprint.dat' using 1:2:3 with image notitle, '' using 1:2:"
                   "(sprintf('%%.3g', $3)) with labels font ',12' notitle\n");
    }
    bench_file_close(ctx, f);
    bench_plot(ctx, "footprint.gp");
}

static void footprint_write_section(struct bench_ctx *ctx, const void *state, struct bench_doc *d)
{
    (void)ctx;
    const struct footprint_state *fp = state;
    bench_doc_heading(d, "Beyond the formula: footprint x repetitions");
    if (!fp->measured) {
        bench_doc_para(d, "Not measured: %s.", fp->why_not);
        return;
    }
    bench_doc_para(d, "A guest of N distinct blocks, each holding one CLI, the whole chain "
                      "executed r times. DBT pays B for every block before its first "
                      "execution, trap-and-emulate pays h on every execution. Cells show "
                      "trap_emulate time / dbt time (above 1: dbt wins). Every block here "
                      "holds a sensitive instruction, so one block's B is set against one h "
                      "per execution: dbt wins after a few executions. Where innocuous code "
                      "dilutes the sensitive instructions, B grows and the break-even moves "
                      "out: the break-even sweep above. Data: footprint.csv.");
    bench_doc_figure(d, "footprint.png", "which technique wins, by footprint and repetitions");
}

static void footprint_write_json(struct bench_ctx *ctx, const void *state, FILE *f)
{
    (void)ctx;
    const struct footprint_state *fp = state;
    bench_json_key(f, "footprint");
    if (!fp->measured) {
        bench_json_not_measured(f, fp->why_not);
        return;
    }
    fputc('[', f);
    for (unsigned i = 0; i < FOOT_N; i++)
        for (unsigned j = 0; j < FOOT_R; j++)
            fprintf(f,
                    "%s{\"blocks\": %u, \"repetitions\": %u, \"trap_ns\": %.0f, \"dbt_ns\": %.0f}",
                    i || j ? ", " : "", foot_blocks[i], foot_reps[j], fp->trap_ns[i][j],
                    fp->dbt_ns[i][j]);
    fputc(']', f);
}

const struct bench_experiment bench_experiment_footprint = {
    .name = "footprint",
    .summary = "code footprint x repetitions: where dbt's up-front B pays off",
    .state_size = sizeof(struct footprint_state),
    .measure = footprint_measure,
    .write_files = footprint_write_files,
    .write_section = footprint_write_section,
    .write_json = footprint_write_json,
};
