/* bench_breakeven.c - experiment "breakeven": predicted m* = B / (h - p) per class against
 * the observed crossover of a sweep over m (executions of the block holding the
 * instruction). Builds on "classes" (h, p) and "translation" (B). */
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"

#define SWEEP_MAX 16
#define CLASS_MAX 8

struct breakeven_row {
    const char *class_name;
    bool measured;
    char why_not[BENCH_WHY_SIZE];
    double h_ns, p_ns, b_ns, predicted;
    unsigned sweep_count;
    unsigned m[SWEEP_MAX];
    double trap_ns[SWEEP_MAX], dbt_ns[SWEEP_MAX]; /* medians, total per run */
    double observed; /* smallest m where dbt <= trap; 0 if never within the sweep */
    double observed_min, observed_max; /* the same, per repetition: its spread */
};

struct breakeven_state {
    unsigned count;
    struct breakeven_row row[CLASS_MAX];
};

/* [setup]; mark 1; m executions of the block {body; dec r15; jnz}; mark 2; exit */
static void build_sweep_guest(const struct bench_class_spec *s, uint32_t m, struct bench_code *c)
{
    c->n = 0;
    c->overflow = false;
    bench_emit(c, s->setup, s->setup_len);
    bench_emit_mark(c, 1);
    bench_emit_loop(c, m, s->body, s->body_len);
    bench_emit_mark(c, 2);
    bench_emit_mark(c, 3);
    bench_emit_exit(c);
}

static int run_total(const struct backend_ops *ops, const struct bench_code *c, double *ns,
                     char *why, size_t ws)
{
    struct machine_result *r = bench_run_guest(ops, c, 60, 2, why, ws);
    if (!r)
        return -1;
    *ns = (double)(r->mark_ns[1] - r->mark_ns[0]);
    free(r);
    return 0;
}

static void breakeven_measure(struct bench_ctx *ctx, void *state)
{
    struct breakeven_state *st = state;
    const struct bench_host *h = &ctx->host;
    int trap = bench_backend_index(h, "trap_emulate"), dbt = bench_backend_index(h, "dbt");
    bool have = trap >= 0 && dbt >= 0 && h->backend_available[trap] && h->backend_available[dbt];
    const void *classes = bench_state(ctx, "classes");
    double cold = bench_translation_cold_ns_per_insn(bench_state(ctx, "translation"));
    unsigned reps = ctx->opt->quick ? 3 : 5;
    static const char *names[] = {"cli", "sti", "cpuid", "rdtsc", "mov_cr3"};
    static const uint32_t sweep[] = {1, 2, 3, 4, 6, 8, 12, 16, 32, 64};
    unsigned nsweep = ctx->opt->quick ? 7 : 10;
    st->count = 0;
    for (unsigned k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        struct breakeven_row *be = &st->row[st->count++];
        be->class_name = names[k];
        if (!have || !bench_classes_cost(classes, names[k], trap, &be->h_ns) ||
            !bench_classes_cost(classes, names[k], dbt, &be->p_ns) || cold <= 0) {
            snprintf(be->why_not, sizeof(be->why_not), "%s",
                     !have ? "needs both trap_emulate and dbt" : "h, p or B not measured");
            continue;
        }
        const struct bench_class_spec *spec = bench_class_spec_find(names[k]);
        /* the loop block is the instruction plus dec/jnz: translation cost of ~3 instructions,
         * at the cold-start rate (each sweep point is a fresh process with a few blocks) */
        be->b_ns = cold * 3;
        be->predicted = be->h_ns > be->p_ns ? be->b_ns / (be->h_ns - be->p_ns) : 0;
        bench_progress(ctx, "bench: break-even %-8s ", names[k]);
        bool ok = true;
        double rep_cross[32] = {0}; /* each repetition's own crossover */
        static struct bench_code c;
        for (unsigned i = 0; i < nsweep && ok; i++) {
            build_sweep_guest(spec, sweep[i], &c);
            double t[32], d[32];
            for (unsigned r = 0; r < reps && ok; r++)
                ok =
                    run_total(h->backend[trap], &c, &t[r], be->why_not, sizeof(be->why_not)) == 0 &&
                    run_total(h->backend[dbt], &c, &d[r], be->why_not, sizeof(be->why_not)) == 0;
            if (!ok)
                break;
            for (unsigned r = 0; r < reps; r++)
                if (!rep_cross[r] && d[r] <= t[r])
                    rep_cross[r] = sweep[i];
            be->m[i] = sweep[i];
            be->trap_ns[i] = bench_median(t, reps);
            be->dbt_ns[i] = bench_median(d, reps);
            be->sweep_count = i + 1;
            double ms[SWEEP_MAX];
            for (unsigned j = 0; j <= i; j++)
                ms[j] = be->m[j];
            be->observed = bench_crossover_first(ms, be->trap_ns, be->dbt_ns, i + 1);
            bench_progress(ctx, ".");
        }
        be->measured = ok;
        for (unsigned r = 0; r < reps && ok; r++) {
            double x = rep_cross[r] ? rep_cross[r] : 1e9; /* no crossover within the sweep */
            if (!r || x < be->observed_min)
                be->observed_min = x;
            if (!r || x > be->observed_max)
                be->observed_max = x;
        }
        bench_progress(ctx, " predicted m* %.2f, observed %.0f\n", be->predicted, be->observed);
    }
}

static void breakeven_write_files(struct bench_ctx *ctx, const void *state)
{
    const struct breakeven_state *st = state;
    FILE *f = bench_file_open(ctx, "breakeven.csv");
    if (f) {
        fprintf(f, "class,h_ns,p_ns,B_ns,predicted_m,observed_m,m,trap_total_ns,dbt_total_ns\n");
        for (unsigned k = 0; k < st->count; k++) {
            const struct breakeven_row *b = &st->row[k];
            if (!b->measured) {
                fprintf(f, "%s,,,,,,,,\"not measured: %s\"\n", b->class_name, b->why_not);
                continue;
            }
            for (unsigned i = 0; i < b->sweep_count; i++)
                fprintf(f, "%s,%.1f,%.1f,%.1f,%.3f,%.0f,%u,%.0f,%.0f\n", b->class_name, b->h_ns,
                        b->p_ns, b->b_ns, b->predicted, b->observed, b->m[i], b->trap_ns[i],
                        b->dbt_ns[i]);
        }
        bench_file_close(ctx, f);
    }
    f = bench_file_open(ctx, "breakeven.dat");
    unsigned max_m = 1;
    if (f) {
        for (unsigned k = 0; k < st->count; k++) {
            const struct breakeven_row *b = &st->row[k];
            if (!b->measured)
                continue;
            fprintf(f, "# %s\n", b->class_name);
            for (unsigned i = 0; i < b->sweep_count; i++) {
                max_m = b->m[i] > max_m ? b->m[i] : max_m;
                fprintf(f, "%u %.3f %.3f\n", b->m[i], b->trap_ns[i] / 1000, b->dbt_ns[i] / 1000);
            }
            fprintf(f, "\n\n");
        }
        bench_file_close(ctx, f);
    }
    char caption[1024];
    bench_caption(ctx, caption, sizeof(caption));
    f = bench_file_open(ctx, "breakeven.gp");
    if (!f)
        return;
    fprintf(f,
            "set logscale xy\nset grid\nset key outside right top vertical Left reverse "
            "font ',9'\nset xlabel 'm: executions of the block holding the instruction'\n"
            "set ylabel 'total time (us, log scale, translation included for dbt)'\n"
            "set xrange [1:%u]\n"
            "set title \"Trap-and-emulate (solid) vs binary translation (dashed): total time "
            "vs m\\n%s\" font ',10'\n",
            max_m, caption);
    const char *fmts[] = {"pngcairo size 1400,800 noenhanced", "svg size 1400,800 noenhanced"};
    const char *exts[] = {"png", "svg"};
    for (int t = 0; t < 2; t++) {
        fprintf(f, "set terminal %s\nset output 'breakeven.%s'\nplot ", fmts[t], exts[t]);
        unsigned idx = 0;
        for (unsigned k = 0; k < st->count; k++) {
            const struct breakeven_row *b = &st->row[k];
            if (!b->measured)
                continue;
            fprintf(f,
                    "%s'breakeven.dat' index %u using 1:2 with linespoints lt %u dt 1 "
                    "title '%s trap (h=%.0f ns)', '' index %u using 1:3 with linespoints lt %u "
                    "dt 2 title '%s dbt (p=%.1f ns, B=%.0f ns; m* pred %.2f, obs %.0f)'",
                    idx ? ", " : "", idx, idx + 1, b->class_name, b->h_ns, idx, idx + 1,
                    b->class_name, b->p_ns, b->b_ns, b->predicted, b->observed);
            idx++;
        }
        fprintf(f, "%s\n", idx ? "" : "NaN notitle");
    }
    bench_file_close(ctx, f);
    bench_plot(ctx, "breakeven.gp");
}

static void breakeven_write_section(struct bench_ctx *ctx, const void *state, struct bench_doc *d)
{
    (void)ctx;
    const struct breakeven_state *st = state;
    bench_doc_heading(d, "Break-even m* = B / (h - p)");
    bench_doc_figure(d, "breakeven.png", "break-even");
    bench_doc_table(d, 7,
                    (const char *[]){"class", "h (ns)", "p (ns)", "B for the block (ns)",
                                     "predicted m*", "observed crossover m (medians)",
                                     "per-repetition crossover (min-max)"});
    for (unsigned k = 0; k < st->count; k++) {
        const struct breakeven_row *b = &st->row[k];
        bench_doc_cell(d, "%s", b->class_name);
        if (!b->measured) {
            bench_doc_cell(d, "not measured: %s", b->why_not);
            for (unsigned i = 0; i < 5; i++)
                bench_doc_cell(d, "%s", "");
            continue;
        }
        bench_doc_cell(d, "%.0f", b->h_ns);
        bench_doc_cell(d, "%.1f", b->p_ns);
        bench_doc_cell(d, "%.0f", b->b_ns);
        bench_doc_cell(d, "%.2f", b->predicted);
        if (b->observed)
            bench_doc_cell(d, "%.0f", b->observed);
        else
            bench_doc_cell(d, "none up to m = %u", b->sweep_count ? b->m[b->sweep_count - 1] : 0);
        if (b->observed_max >= 1e9)
            bench_doc_cell(d, "%.0f-none", b->observed_min);
        else
            bench_doc_cell(d, "%.0f-%.0f", b->observed_min, b->observed_max);
    }
    bench_doc_table_end(d);
    bench_doc_para(d, "The sweep runs, for each m, a fresh guest in which the block holding the "
                      "instruction executes m times, on both backends, and compares total "
                      "times (dbt includes translating every block of that guest).");
}

static void breakeven_write_json(struct bench_ctx *ctx, const void *state, FILE *f)
{
    (void)ctx;
    const struct breakeven_state *st = state;
    bench_json_key(f, "breakeven");
    fputc('[', f);
    for (unsigned k = 0; k < st->count; k++) {
        const struct breakeven_row *b = &st->row[k];
        fprintf(f, "%s{\"class\": ", k ? ", " : "");
        bench_json_str(f, b->class_name);
        if (b->measured)
            fprintf(f,
                    ", \"h_ns\": %.1f, \"p_ns\": %.1f, \"B_ns\": %.1f, \"predicted_m\": %.3f, "
                    "\"observed_m\": %.0f}",
                    b->h_ns, b->p_ns, b->b_ns, b->predicted, b->observed);
        else {
            fprintf(f, ", \"result\": ");
            bench_json_not_measured(f, b->why_not);
            fputc('}', f);
        }
    }
    fputc(']', f);
}

const struct bench_experiment bench_experiment_breakeven = {
    .name = "breakeven",
    .summary = "predicted break-even m* = B / (h - p) against the observed crossover",
    .state_size = sizeof(struct breakeven_state),
    .measure = breakeven_measure,
    .write_files = breakeven_write_files,
    .write_section = breakeven_write_section,
    .write_json = breakeven_write_json,
};
