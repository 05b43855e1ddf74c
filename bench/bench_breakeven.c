/* bench_breakeven.c - experiment "breakeven": does m* = B / (h - p) predict when binary
 * translation overtakes trap-and-emulate?
 *
 * The code at stake is a block of one sensitive instruction and F innocuous ones (LEA on
 * eight registers, independent of each other), executed m times. Per execution,
 * trap_emulate pays h + F x (native cost of the innocuous code), dbt pays p + F x (translated
 * cost); once, before the first execution, dbt pays B to translate the block. So
 *
 *     trap(m) = m (h + I_trap)        dbt(m) = B + m (p + I_dbt)
 *     m*      = B / ((h + I_trap) - (p + I_dbt))       ("full": with the innocuous term)
 *             = B / (h - p)    when I_trap = I_dbt     ("simple": the textbook formula)
 *
 * For each class that traps on this host and each F, three guests, all run in fresh processes:
 *
 *   steady   the block as a subroutine, executed once (dbt translates it: warm-up), then N
 *            times between marks 1 and 2, then the block without the instruction N times
 *            between marks 2 and 3. h (trap_emulate) or p (dbt) = (t12 - t23) / N;
 *            h + I_trap and p + I_dbt = t12 / N.
 *   sweep    marks and exit in a subroutine M translated before the timed part; mark 1 returns
 *            straight into the block, which loops m times and falls through into M (mark 2).
 *            So the only code dbt translates between the marks is the block: B = the growth of
 *            dbt's own TSC counter translate_cycles (backends/dbt) between marks 1 and 2,
 *            which the VMM samples at each mark (machine_config.mark_stat).
 *   frame    the sweep guest with mark 1 returning into M instead of the block: what the
 *            marks themselves cost on each backend (an OUT traps on trap_emulate and is a
 *            callout on dbt), subtracted from both backends' totals like the baseline loop
 *            of the cost table.
 *
 * The sweep's m grid is logarithmic and centred on the prediction (a factor of ~6 each side),
 * so that the crossover lies well inside it; the observed crossover is interpolated between
 * the grid points around it, for the medians and for each repetition (its spread).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"
#include "vmm/guest_layout.h"

#define BE_CLASS_MAX 8
#define BE_F_MAX 8
#define BE_M_MAX 32
#define BE_REPS_MAX 32

/* Classes tried, in report order. Those that do not trap here are listed, not swept. */
static const char *const sweep_classes[] = {"cli", "sti",   "rdtsc",     "mov_cr3",
                                            "out", "cpuid", "pushf_popf"};
static const char *const quick_classes[] = {"cli", "rdtsc", "cpuid", "pushf_popf"};
static const unsigned f_full[] = {1, 16, 64, 256, 1024, 4096, 16384, 32768};
static const unsigned f_quick[] = {1, 64, 1024, 16384};
/* The global m grid (factor ~1.5), from which each sweep takes a window. */
static const unsigned m_grid[] = {1,   2,    3,    4,    6,    8,    12,   16,  24,
                                  32,  48,   64,   96,   128,  192,  256,  384, 512,
                                  768, 1024, 1536, 2048, 3072, 4096, 6144, 8192};
#define M_GRID_COUNT (sizeof(m_grid) / sizeof(m_grid[0]))

struct be_point {
    unsigned f;
    bool measured;
    char why_not[BENCH_WHY_SIZE];
    unsigned blocks;                  /* blocks dbt translated for the block (B's extent) */
    struct bench_stats b_ns;          /* B: per sweep run, frame's translation subtracted */
    struct bench_stats h_ns, p_ns;    /* per execution, innocuous code subtracted */
    double exec_trap_ns, exec_dbt_ns; /* per execution of the whole block (h + I, p + I) */
    double frame_trap_ns, frame_dbt_ns;
    double predicted, predicted_full; /* B / (h - p), B / (exec_trap - exec_dbt) */
    unsigned m_count;
    unsigned m[BE_M_MAX];
    double trap_ns[BE_M_MAX], dbt_ns[BE_M_MAX]; /* medians over repetitions, frame subtracted */
    enum bench_crossing where;
    double observed;                            /* interpolated crossover of the medians */
    double observed_min, observed_max;          /* of the per-repetition crossovers */
    unsigned reps_without_crossing;             /* repetitions whose curves did not cross inside */
    double fit_trap_fixed_ns, fit_dbt_fixed_ns; /* sweep fits: one-time costs ... */
    double fit_saving_ns;                       /* ... and saving per execution */
    char reason[BENCH_WHY_SIZE];                /* when observed and predicted differ by > 25% */
};

struct be_class {
    const struct bench_class_spec *spec;
    bool swept;
    char why_not[BENCH_WHY_SIZE]; /* "does not trap here: ..." or not measured */
    unsigned f_count;
    struct be_point pt[BE_F_MAX];
};

struct breakeven_state {
    unsigned count;
    struct be_class c[BE_CLASS_MAX];
};

/* ---- guests --------------------------------------------------------------------------------- */

/* The innocuous instruction i of a block: LEA reg, [reg+1] over eight registers that no class
 * body, mark or loop uses (rsi, rdi, rbp, r8-r11, r13): independent, so the block's own cost
 * stays small beside h. */
static void emit_innocuous(struct bench_code *c, unsigned f)
{
    static const uint8_t lea[8][4] = {
        {0x48, 0x8d, 0x76, 0x01}, {0x48, 0x8d, 0x7f, 0x01}, {0x48, 0x8d, 0x6d, 0x01},
        {0x4d, 0x8d, 0x40, 0x01}, {0x4d, 0x8d, 0x49, 0x01}, {0x4d, 0x8d, 0x52, 0x01},
        {0x4d, 0x8d, 0x5b, 0x01}, {0x4d, 0x8d, 0x6d, 0x01},
    };
    for (unsigned i = 0; i < f; i++)
        bench_emit(c, lea[i % 8], 4);
}

/* top: body; F innocuous; dec r15; jnz top */
static void emit_block_loop(struct bench_code *c, const uint8_t *body, size_t len, unsigned f)
{
    size_t top = c->n;
    bench_emit(c, body, len);
    emit_innocuous(c, f);
    BENCH_EMIT(c, 0x49, 0xff, 0xcf, 0x0f, 0x85); /* dec r15; jnz rel32 */
    bench_emit_u32(c, (uint32_t)(int32_t)(top - (c->n + 4)));
}

static void patch_rel32(struct bench_code *c, size_t at, size_t target)
{
    int32_t rel = (int32_t)(target - (at + 4));
    memcpy(c->b + at, &rel, 4);
}

static void emit_call(struct bench_code *c, size_t *patch)
{
    BENCH_EMIT(c, 0xe8);
    *patch = c->n;
    bench_emit_u32(c, 0);
}

/* Steady guest: warm-up, then N executions with the instruction, N without. */
static void build_steady(const struct bench_class_spec *s, unsigned f, uint32_t n,
                         struct bench_code *c)
{
    c->n = 0;
    c->overflow = false;
    size_t call[4];
    bench_emit(c, s->setup, s->setup_len);
    BENCH_EMIT(c, 0x49, 0xc7, 0xc7, 1, 0, 0, 0); /* mov r15, 1 */
    emit_call(c, &call[0]);                      /* call with */
    BENCH_EMIT(c, 0x49, 0xc7, 0xc7, 1, 0, 0, 0);
    emit_call(c, &call[1]); /* call without */
    bench_emit_mark(c, 1);
    BENCH_EMIT(c, 0x49, 0xc7, 0xc7);
    bench_emit_u32(c, n);
    emit_call(c, &call[2]);
    bench_emit_mark(c, 2);
    BENCH_EMIT(c, 0x49, 0xc7, 0xc7);
    bench_emit_u32(c, n);
    emit_call(c, &call[3]);
    bench_emit_mark(c, 3);
    bench_emit_exit(c);
    size_t with = c->n;
    emit_block_loop(c, s->body, s->body_len, f);
    BENCH_EMIT(c, 0xc3); /* ret */
    size_t without = c->n;
    emit_block_loop(c, s->base, s->base_len, f);
    BENCH_EMIT(c, 0xc3);
    patch_rel32(c, call[0], with);
    patch_rel32(c, call[2], with);
    patch_rel32(c, call[1], without);
    patch_rel32(c, call[3], without);
}

/* Sweep guest (into_block) or its frame (!into_block):
 *     [setup]; mov r14d, -1; call M              mark 0: M translated before the timed part
 *     mov r15, m; push EXIT; push A|M; jmp M     mark 1, whose RET enters A (or M again)
 *  A: body; F innocuous; dec r15; jnz A          the block, m times; falls through into M
 *  M: inc r14d; mov eax, r14d; OUT mark; ret     mark 2, whose RET leaves for EXIT
 *  EXIT: the end
 * Both have the same bytes except A|M, so every address is the same. */
static void build_sweep(const struct bench_class_spec *s, unsigned f, uint32_t m, bool into_block,
                        struct bench_code *c)
{
    c->n = 0;
    c->overflow = false;
    size_t call_m, push_exit, push_target, jmp_m;
    bench_emit(c, s->setup, s->setup_len);
    BENCH_EMIT(c, 0x41, 0xbe, 0xff, 0xff, 0xff, 0xff); /* mov r14d, -1 */
    emit_call(c, &call_m);
    BENCH_EMIT(c, 0x49, 0xc7, 0xc7); /* mov r15, m */
    bench_emit_u32(c, m);
    BENCH_EMIT(c, 0x68); /* push imm32 (sign-extended; guest code lies below 2 GiB) */
    push_exit = c->n;
    bench_emit_u32(c, 0);
    BENCH_EMIT(c, 0x68);
    push_target = c->n;
    bench_emit_u32(c, 0);
    BENCH_EMIT(c, 0xe9); /* jmp M */
    jmp_m = c->n;
    bench_emit_u32(c, 0);
    size_t block = c->n;
    emit_block_loop(c, s->body, s->body_len, f);
    size_t mark = c->n;
    BENCH_EMIT(c, 0x41, 0xff, 0xc6, 0x44, 0x89, 0xf0); /* inc r14d; mov eax, r14d */
    bench_emit_mark_eax(c);
    BENCH_EMIT(c, 0xc3); /* ret */
    size_t exit = c->n;
    bench_emit_exit(c);
    patch_rel32(c, call_m, mark);
    patch_rel32(c, jmp_m, mark);
    uint32_t a_exit = (uint32_t)(GUEST_IMAGE_BASE + exit);
    uint32_t a_target = (uint32_t)(GUEST_IMAGE_BASE + (into_block ? block : mark));
    memcpy(c->b + push_exit, &a_exit, 4);
    memcpy(c->b + push_target, &a_target, 4);
}

/* ---- runs --------------------------------------------------------------------------------- */

struct run_out {
    double t[3];        /* mark-to-mark CPU time of the guest thread, sampling excluded */
    double b_cycles[3]; /* dbt's translate_cycles spent in each interval */
    double blocks;      /* blocks dbt translated in the whole run */
};

static int run(const struct backend_ops *ops, const struct bench_code *c, unsigned marks,
               struct run_out *o, char *why, size_t ws)
{
    static const struct bench_marks what = {.cpu_time = true, .stat_name = "translate_cycles"};
    struct machine_result *r = bench_run_guest_marks(ops, c, 120, marks, &what, why, ws);
    if (!r)
        return -1;
    memset(o, 0, sizeof(*o));
    for (unsigned i = 0; i + 1 < marks && i < 3; i++) {
        o->t[i] = (double)(r->mark_cpu_ns[i + 1] - r->mark_cpu_ns[i]) - (double)r->mark_stat_ns[i];
        o->b_cycles[i] = (double)(r->mark_stat[i + 1] - r->mark_stat[i]);
    }
    bench_result_stat(r, "blocks_translated", &o->blocks);
    free(r);
    return 0;
}

/* Executions per steady run: about 5 ms of trap_emulate time at a few us per trap. */
static uint32_t steady_executions(unsigned f)
{
    return (uint32_t)(5e6 / (3000.0 + 0.5 * f));
}

/* The window of the m grid around the expected crossover: a factor of ~6 each side, at least
 * 7 points, within the grid. */
static unsigned sweep_window(double expected, unsigned *m)
{
    unsigned lo = 0, hi = M_GRID_COUNT - 1;
    while (lo < M_GRID_COUNT - 1 && m_grid[lo + 1] <= expected / 6)
        lo++;
    while (hi > 0 && m_grid[hi - 1] >= expected * 6)
        hi--;
    while (hi - lo + 1 < 7 && (lo > 0 || hi < M_GRID_COUNT - 1)) {
        if (hi < M_GRID_COUNT - 1)
            hi++;
        if (hi - lo + 1 < 7 && lo > 0)
            lo--;
    }
    unsigned n = 0;
    for (unsigned i = lo; i <= hi && n < BE_M_MAX; i++)
        m[n++] = m_grid[i];
    return n;
}

/* Least squares of y = a + b x. */
static void fit_line(const double *x, const double *y, unsigned n, double *a, double *b)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (unsigned i = 0; i < n; i++) {
        sx += x[i];
        sy += y[i];
        sxx += x[i] * x[i];
        sxy += x[i] * y[i];
    }
    double d = n * sxx - sx * sx;
    *b = d != 0 ? (n * sxy - sx * sy) / d : 0;
    *a = n ? (sy - *b * sx) / n : 0;
}

/* A crossover below the sweep's first point m0 agrees with a prediction below 1.25 m0 (within
 * 25% of something below m0); one above its last point, with a prediction above it / 1.25. */
static bool below_agrees(const struct be_point *pt)
{
    return pt->predicted < 1.25 * pt->m[0];
}

static bool above_agrees(const struct be_point *pt)
{
    return pt->predicted > pt->m[pt->m_count - 1] / 1.25;
}

/* Why observed and predicted differ, from the sweep's own numbers: fitted as lines in m,
 * trap(m) = a_trap + m s_trap and dbt(m) = a_dbt + m s_dbt, the model says a_trap = 0,
 * a_dbt = B, s_trap - s_dbt = the saving per execution of the steady runs. */
static void explain_miss(struct be_point *pt, double b)
{
    snprintf(pt->reason, sizeof(pt->reason),
             "measured in the sweep: one-time costs trap_emulate %.0f ns, dbt %.0f ns (B %.0f "
             "ns); saving per execution %.0f ns (steady runs %.0f ns)",
             pt->fit_trap_fixed_ns, pt->fit_dbt_fixed_ns, b, pt->fit_saving_ns,
             pt->exec_trap_ns - pt->exec_dbt_ns);
}

/* The three guests of one (class, F), built once. */
struct point_guests {
    struct bench_code steady, frame, sweep[BE_M_MAX];
    uint32_t n; /* executions per steady run */
};

/* One steady run: per execution, with and without the instruction. */
static int run_steady(const struct backend_ops *ops, const struct point_guests *g, double *with,
                      double *without, char *why, size_t ws)
{
    struct run_out o;
    if (run(ops, &g->steady, 3, &o, why, ws) < 0)
        return -1;
    *with = o.t[0] / g->n;
    *without = o.t[1] / g->n;
    return 0;
}

static int measure_sweep(struct bench_ctx *ctx, const struct bench_class_spec *s,
                         const struct backend_ops *const ops[2], unsigned reps,
                         struct point_guests *g, struct be_point *pt);

static void measure_point(struct bench_ctx *ctx, const struct bench_class_spec *s, int trap,
                          int dbt, unsigned reps, struct be_point *pt)
{
    const struct bench_host *h = &ctx->host;
    const struct backend_ops *ops[2] = {h->backend[trap], h->backend[dbt]};
    double tsc_ghz = h->tsc_ghz;
    static struct point_guests g;
    char *why = pt->why_not;
    size_t ws = sizeof(pt->why_not);
    bench_progress(ctx, "bench: break-even %-8s F=%-5u ", s->name, pt->f);
    g.n = steady_executions(pt->f);
    build_steady(s, pt->f, g.n, &g.steady);
    build_sweep(s, pt->f, 1, false, &g.frame);
    build_sweep(s, pt->f, 1, true, &g.sweep[0]);

    /* Pilot: a first B and per-execution saving, to centre the m window on the prediction. */
    double with[2][BE_REPS_MAX], without[2][BE_REPS_MAX];
    struct run_out o;
    if (run_steady(ops[0], &g, &with[0][0], &without[0][0], why, ws) < 0 ||
        run_steady(ops[1], &g, &with[1][0], &without[1][0], why, ws) < 0 ||
        run(ops[1], &g.sweep[0], 3, &o, why, ws) < 0) {
        bench_progress(ctx, "not measured: %s\n", why);
        return;
    }
    double saving = with[0][0] - with[1][0];
    double expected = saving > 0 ? o.b_cycles[1] / tsc_ghz / saving : m_grid[M_GRID_COUNT - 1];
    /* A crossover found at an end of the window moves the window there (twice at most). */
    for (unsigned attempt = 0;; attempt++) {
        pt->m_count = sweep_window(expected, pt->m);
        if (measure_sweep(ctx, s, ops, reps, &g, pt) < 0) {
            bench_progress(ctx, "not measured: %s\n", why);
            return;
        }
        if (attempt == 2 || (pt->where == BENCH_CROSS_BELOW && pt->m[0] == m_grid[0]) ||
            (pt->where == BENCH_CROSS_ABOVE &&
             pt->m[pt->m_count - 1] == m_grid[M_GRID_COUNT - 1]) ||
            pt->where == BENCH_CROSS_INSIDE)
            break;
        expected = pt->where == BENCH_CROSS_BELOW ? pt->m[0] / 6.0 : pt->m[pt->m_count - 1] * 6.0;
        bench_progress(ctx, "(window moved) ");
    }
    pt->measured = true;
    double b = pt->b_ns.median;
    bool miss = pt->where == BENCH_CROSS_INSIDE
                    ? pt->predicted > 0 && fabs(pt->observed / pt->predicted - 1) > 0.25
                : pt->where == BENCH_CROSS_BELOW ? !below_agrees(pt)
                                                 : !above_agrees(pt);
    if (miss)
        explain_miss(pt, b);
    bench_progress(ctx,
                   " B %.0f ns, h %.0f, p %.1f: predicted m* %.2f (full %.2f), observed %s%.2f\n",
                   b, pt->h_ns.median, pt->p_ns.median, pt->predicted, pt->predicted_full,
                   pt->where == BENCH_CROSS_BELOW   ? "below "
                   : pt->where == BENCH_CROSS_ABOVE ? "above "
                                                    : "",
                   pt->where == BENCH_CROSS_ABOVE ? (double)pt->m[pt->m_count - 1] : pt->observed);
}

/* The repetitions of one (class, F) over the window pt->m: each repetition takes every guest
 * once on both backends, so that all the quantities of one repetition share the machine's
 * state of the moment. */
static int measure_sweep(struct bench_ctx *ctx, const struct bench_class_spec *s,
                         const struct backend_ops *const ops[2], unsigned reps,
                         struct point_guests *g, struct be_point *pt)
{
    double tsc_ghz = ctx->host.tsc_ghz;
    char *why = pt->why_not;
    size_t ws = sizeof(pt->why_not);
    for (unsigned i = 0; i < pt->m_count; i++)
        build_sweep(s, pt->f, pt->m[i], true, &g->sweep[i]);
    struct run_out o;

    static double t[BE_M_MAX][2][BE_REPS_MAX], frame[2][BE_REPS_MAX];
    double with[2][BE_REPS_MAX], without[2][BE_REPS_MAX];
    static double bsamples[BE_M_MAX * BE_REPS_MAX];
    double frame_blocks = 0;
    unsigned nb = 0;
    for (unsigned r = 0; r < reps; r++) {
        for (unsigned k = 0; k < 2; k++) {
            if (run_steady(ops[k], g, &with[k][r], &without[k][r], why, ws) < 0 ||
                run(ops[k], &g->frame, 3, &o, why, ws) < 0)
                return -1;
            frame[k][r] = o.t[1];
            if (k)
                frame_blocks = o.blocks;
            if (k && o.b_cycles[1] != 0) { /* the layout's promise, checked */
                snprintf(why, ws,
                         "the frame guest translated code between its marks (%.0f cycles): B "
                         "would include more than the block",
                         o.b_cycles[1]);
                return -1;
            }
        }
        for (unsigned i = 0; i < pt->m_count; i++)
            for (unsigned k = 0; k < 2; k++) {
                if (run(ops[k], &g->sweep[i], 3, &o, why, ws) < 0)
                    return -1;
                t[i][k][r] = o.t[1];
                if (k) {
                    bsamples[nb++] = o.b_cycles[1] / tsc_ghz;
                    pt->blocks = (unsigned)(o.blocks - frame_blocks);
                }
            }
        bench_progress(ctx, ".");
    }
    double cost[2][BE_REPS_MAX];
    pt->reps_without_crossing = 0;
    for (unsigned k = 0; k < 2; k++)
        for (unsigned r = 0; r < reps; r++)
            cost[k][r] = with[k][r] - without[k][r];
    bench_stats_of(cost[0], reps, &pt->h_ns);
    bench_stats_of(cost[1], reps, &pt->p_ns);
    pt->exec_trap_ns = bench_median(with[0], reps);
    pt->exec_dbt_ns = bench_median(with[1], reps);
    pt->frame_trap_ns = bench_median(frame[0], reps);
    pt->frame_dbt_ns = bench_median(frame[1], reps);
    for (unsigned i = 0; i < pt->m_count; i++)
        for (unsigned k = 0; k < 2; k++)
            for (unsigned r = 0; r < reps; r++)
                t[i][k][r] -= k ? pt->frame_dbt_ns : pt->frame_trap_ns;
    for (unsigned i = 0; i < pt->m_count; i++) {
        pt->trap_ns[i] = bench_median(t[i][0], reps);
        pt->dbt_ns[i] = bench_median(t[i][1], reps);
    }
    bench_stats_of(bsamples, nb, &pt->b_ns);
    double b = pt->b_ns.median;
    double hp = pt->h_ns.median - pt->p_ns.median;
    double dexec = pt->exec_trap_ns - pt->exec_dbt_ns;
    pt->predicted = hp > 0 ? b / hp : 0;
    pt->predicted_full = dexec > 0 ? b / dexec : 0;

    double mm[BE_M_MAX];
    for (unsigned i = 0; i < pt->m_count; i++)
        mm[i] = pt->m[i];
    pt->observed =
        bench_crossover_interpolated(mm, pt->trap_ns, pt->dbt_ns, pt->m_count, &pt->where);
    double slope_trap, slope_dbt;
    fit_line(mm, pt->trap_ns, pt->m_count, &pt->fit_trap_fixed_ns, &slope_trap);
    fit_line(mm, pt->dbt_ns, pt->m_count, &pt->fit_dbt_fixed_ns, &slope_dbt);
    pt->fit_saving_ns = slope_trap - slope_dbt;
    /* each repetition's own crossover */
    bool first = true;
    for (unsigned r = 0; r < reps; r++) {
        double tr[BE_M_MAX], db[BE_M_MAX];
        for (unsigned i = 0; i < pt->m_count; i++) {
            tr[i] = t[i][0][r];
            db[i] = t[i][1][r];
        }
        enum bench_crossing w;
        double x = bench_crossover_interpolated(mm, tr, db, pt->m_count, &w);
        if (w != BENCH_CROSS_INSIDE) {
            pt->reps_without_crossing++;
            continue;
        }
        if (first || x < pt->observed_min)
            pt->observed_min = x;
        if (first || x > pt->observed_max)
            pt->observed_max = x;
        first = false;
    }
    return 0;
}

static void breakeven_measure(struct bench_ctx *ctx, void *state)
{
    struct breakeven_state *st = state;
    const struct bench_host *h = &ctx->host;
    int trap = bench_backend_index(h, "trap_emulate"), dbt = bench_backend_index(h, "dbt");
    bool have = trap >= 0 && dbt >= 0 && h->backend_available[trap] && h->backend_available[dbt];
    bool quick = ctx->opt->quick;
    const char *const *names = quick ? quick_classes : sweep_classes;
    unsigned nnames = quick ? sizeof(quick_classes) / sizeof(quick_classes[0])
                            : sizeof(sweep_classes) / sizeof(sweep_classes[0]);
    const unsigned *fs = quick ? f_quick : f_full;
    unsigned nf = quick ? sizeof(f_quick) / sizeof(f_quick[0]) : sizeof(f_full) / sizeof(f_full[0]);
    unsigned reps = ctx->opt->repetitions > BE_REPS_MAX ? BE_REPS_MAX : ctx->opt->repetitions;
    for (unsigned k = 0; k < nnames && st->count < BE_CLASS_MAX; k++) {
        struct be_class *bc = &st->c[st->count++];
        bc->spec = bench_class_spec_find(names[k]);
        if (!have) {
            snprintf(bc->why_not, sizeof(bc->why_not),
                     "not measured: needs both trap_emulate and dbt");
            continue;
        }
        char why[256];
        if (!bench_class_traps(bc->spec, h, why, sizeof(why))) {
            snprintf(bc->why_not, sizeof(bc->why_not), "does not trap here: %s", why);
            continue;
        }
        bc->swept = true;
        bc->f_count = nf;
        for (unsigned i = 0; i < nf; i++) {
            bc->pt[i].f = fs[i];
            measure_point(ctx, bc->spec, trap, dbt, reps, &bc->pt[i]);
        }
    }
}

/* ---- output ------------------------------------------------------------------------------- */

static const char *const colors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                     "#E69F00", "#56B4E9", "#000000", "#F0E442"};

static void observed_text(const struct be_point *pt, char *buf, size_t size)
{
    if (pt->where == BENCH_CROSS_BELOW)
        snprintf(buf, size, "< %u (dbt faster from the first point)", pt->m[0]);
    else if (pt->where == BENCH_CROSS_ABOVE)
        snprintf(buf, size, "> %u (no crossing in the sweep)", pt->m[pt->m_count - 1]);
    else
        snprintf(buf, size, "%.1f", pt->observed);
}

static void spread_text(const struct be_point *pt, unsigned reps, char *buf, size_t size)
{
    unsigned crossed = reps - pt->reps_without_crossing;
    if (!crossed)
        snprintf(buf, size, "none crossed inside");
    else if (pt->reps_without_crossing)
        snprintf(buf, size, "%.1f-%.1f (%u of %u crossed inside)", pt->observed_min,
                 pt->observed_max, crossed, reps);
    else
        snprintf(buf, size, "%.1f-%.1f", pt->observed_min, pt->observed_max);
}

static void breakeven_write_files(struct bench_ctx *ctx, const void *state)
{
    const struct breakeven_state *st = state;
    FILE *f = bench_file_open(ctx, "breakeven.csv");
    if (f) {
        fprintf(f, "class,footprint_insns,B_ns,h_ns,p_ns,exec_trap_ns,exec_dbt_ns,predicted_m,"
                   "predicted_m_full,observed_m,observed_m_min,observed_m_max,crossing,m,"
                   "trap_total_ns,dbt_total_ns,note\n");
        for (unsigned k = 0; k < st->count; k++) {
            const struct be_class *bc = &st->c[k];
            if (!bc->swept) {
                fprintf(f, "%s,,,,,,,,,,,,,,,,\"%s\"\n", bc->spec->name, bc->why_not);
                continue;
            }
            for (unsigned j = 0; j < bc->f_count; j++) {
                const struct be_point *pt = &bc->pt[j];
                if (!pt->measured) {
                    fprintf(f, "%s,%u,,,,,,,,,,,,,,,\"not measured: %s\"\n", bc->spec->name, pt->f,
                            pt->why_not);
                    continue;
                }
                for (unsigned i = 0; i < pt->m_count; i++)
                    fprintf(f,
                            "%s,%u,%.0f,%.1f,%.1f,%.1f,%.1f,%.3f,%.3f,%.3f,%.3f,%.3f,%s,%u,%.0f,"
                            "%.0f,\"%s\"\n",
                            bc->spec->name, pt->f, pt->b_ns.median, pt->h_ns.median,
                            pt->p_ns.median, pt->exec_trap_ns, pt->exec_dbt_ns, pt->predicted,
                            pt->predicted_full, pt->observed, pt->observed_min, pt->observed_max,
                            pt->where == BENCH_CROSS_INSIDE  ? "inside"
                            : pt->where == BENCH_CROSS_BELOW ? "below"
                                                             : "above",
                            pt->m[i], pt->trap_ns[i], pt->dbt_ns[i], pt->reason);
            }
        }
        bench_file_close(ctx, f);
    }
    /* breakeven.dat: one index per swept class; columns F, predicted, predicted_full,
     * observed (NaN unless inside), min, max, below-marker, above-marker */
    f = bench_file_open(ctx, "breakeven.dat");
    double ymin = 1e9, ymax = 0, fmax = 1;
    unsigned idx = 0;
    if (f) {
        for (unsigned k = 0; k < st->count; k++) {
            const struct be_class *bc = &st->c[k];
            if (!bc->swept)
                continue;
            fprintf(f, "# %s: F predicted predicted_full observed min max below above\n",
                    bc->spec->name);
            for (unsigned j = 0; j < bc->f_count; j++) {
                const struct be_point *pt = &bc->pt[j];
                if (!pt->measured)
                    continue;
                bool in = pt->where == BENCH_CROSS_INSIDE;
                double lo = pt->observed_min > 0 ? pt->observed_min : pt->observed;
                double hi = pt->observed_max > 0 ? pt->observed_max : pt->observed;
                fprintf(f, "%u %.4g %.4g ", pt->f, pt->predicted, pt->predicted_full);
                if (in)
                    fprintf(f, "%.4g %.4g %.4g", pt->observed, lo, hi);
                else
                    fprintf(f, "NaN NaN NaN");
                /* outside the sweep: a triangle at the sweep's end, pointing beyond it */
                if (pt->where == BENCH_CROSS_BELOW)
                    fprintf(f, " %u NaN\n", pt->m[0]);
                else if (pt->where == BENCH_CROSS_ABOVE)
                    fprintf(f, " NaN %u\n", pt->m[pt->m_count - 1]);
                else
                    fprintf(f, " NaN NaN\n");
                double vals[5] = {pt->predicted, pt->predicted_full, in ? lo : 0, in ? hi : 0,
                                  in ? 0
                                     : pt->m[pt->where == BENCH_CROSS_BELOW ? 0 : pt->m_count - 1]};
                for (unsigned v = 0; v < 5; v++)
                    if (vals[v] > 0) {
                        ymin = vals[v] < ymin ? vals[v] : ymin;
                        ymax = vals[v] > ymax ? vals[v] : ymax;
                    }
                fmax = pt->f > fmax ? pt->f : fmax;
            }
            fprintf(f, "\n\n");
            idx++;
        }
        bench_file_close(ctx, f);
    }
    if (ymax <= 0) {
        ymin = 0.1;
        ymax = 10;
    }
    char caption[1024];
    bench_caption(ctx, caption, sizeof(caption));
    f = bench_file_open(ctx, "breakeven.gp");
    if (!f)
        return;
    fprintf(f,
            "set datafile missing 'NaN'\nset logscale xy\nset grid\n"
            "set key outside right top vertical Left reverse font ',10' spacing 1.2\n"
            "set xlabel 'F: innocuous instructions translated with each sensitive instruction "
            "(log scale)'\n"
            "set ylabel 'break-even m* (executions of the block, log scale)'\n"
            "set xrange [0.7:%g]\nset yrange [%g:%g]\n"
            "set title \"When binary translation overtakes trap-and-emulate: predicted m* = "
            "B/(h-p) (solid line), with the innocuous-code term (dashed),\\nobserved crossover "
            "(points; bars: per-repetition min-max; triangles: crossover outside the sweep)\\n"
            "%s\" font ',10'\n",
            fmax * 1.5, ymin / 2, ymax * 2, caption);
    const char *fmts[] = {"pngcairo size 1400,800 noenhanced", "svg size 1400,800 noenhanced"};
    const char *exts[] = {"png", "svg"};
    for (int t = 0; t < 2; t++) {
        fprintf(f, "set terminal %s\nset output 'breakeven.%s'\nplot ", fmts[t], exts[t]);
        unsigned i = 0;
        for (unsigned k = 0; k < st->count; k++) {
            const struct be_class *bc = &st->c[k];
            if (!bc->swept)
                continue;
            const char *col = colors[i % 8];
            /* colour = class (one key entry each); line and point styles keyed once below;
             * only series with points (gnuplot warns about empty ones) */
            fprintf(f,
                    "%s'breakeven.dat' index %u using 1:2 with lines lw 2 lc rgb '%s' dt 1 "
                    "notitle, '' index %u using 1:3 with lines lw 2 lc rgb '%s' dt 2 notitle, "
                    "'' index %u using 1:4:5:6 with yerrorbars pt 7 ps 1.5 lw 2 lc rgb '%s' "
                    "title '%s'",
                    i ? ", " : "", i, col, i, col, i, col, bc->spec->name);
            bool below = false, above = false;
            for (unsigned j = 0; j < bc->f_count; j++) {
                below |= bc->pt[j].measured && bc->pt[j].where == BENCH_CROSS_BELOW;
                above |= bc->pt[j].measured && bc->pt[j].where == BENCH_CROSS_ABOVE;
            }
            if (below)
                fprintf(f, ", '' index %u using 1:7 with points pt 11 ps 2 lc rgb '%s' notitle", i,
                        col);
            if (above)
                fprintf(f, ", '' index %u using 1:8 with points pt 9 ps 2 lc rgb '%s' notitle", i,
                        col);
            i++;
        }
        fprintf(f,
                "%sNaN with lines lw 2 lc rgb 'black' dt 1 title 'predicted m* = B/(h-p)', "
                "NaN with lines lw 2 lc rgb 'black' dt 2 title 'predicted with the "
                "innocuous-code term', NaN with points pt 7 ps 1.5 lc rgb 'black' "
                "title 'observed crossover (bars: min-max)', NaN with points pt 11 ps 2 "
                "lc rgb 'black' title 'observed below the sweep', NaN with points pt 9 ps 2 "
                "lc rgb 'black' title 'observed above the sweep'\n",
                i ? ", " : "");
    }
    bench_file_close(ctx, f);
    bench_plot(ctx, "breakeven.gp");
}

static void breakeven_write_section(struct bench_ctx *ctx, const void *state, struct bench_doc *d)
{
    const struct breakeven_state *st = state;
    unsigned reps = ctx->opt->repetitions > BE_REPS_MAX ? BE_REPS_MAX : ctx->opt->repetitions;
    bench_doc_heading(d, "Break-even: when does translating pay off?");
    bench_doc_para(
        d,
        "A block of one sensitive instruction and F innocuous instructions executes m times. "
        "trap_emulate pays **h** per execution (trap round trip, decode, emulation); dbt pays "
        "**B** once, translating the block (dbt's own TSC counter translate_cycles, sampled by the "
        "VMM at the two timing marks: the block is all dbt translates between them), then **p** "
        "per execution "
        "(the translated instruction). Both pay the innocuous code per execution: natively on "
        "trap_emulate, translated on dbt. Predicted break-even m* = B / (h - p); with the "
        "innocuous-code term m* = B / ((h + I_trap) - (p + I_dbt)), where h + I_trap and p + "
        "I_dbt are the measured costs of one execution of the whole block. h and p are measured "
        "per F in separate steady-state runs (the block executed N times after a warm-up, minus "
        "the same block without the instruction). The observed crossover is where dbt's total "
        "(B included) meets trap_emulate's, interpolated between the two points of the m sweep "
        "around it; both totals have the cost of the timing marks subtracted (measured by the "
        "same guest without the block). Goal: predicted within 25%% of observed wherever the "
        "crossover lies inside the sweep.");
    bench_doc_figure(d, "breakeven.png", "break-even: predicted and observed m* against F");
    for (unsigned k = 0; k < st->count; k++) {
        const struct be_class *bc = &st->c[k];
        if (!bc->swept)
            bench_doc_item(d, "**%s**: %s; left out of the break-even.", bc->spec->name,
                           bc->why_not);
    }
    bench_doc_table(d, 10,
                    (const char *[]){"class", "F", "B ns (blocks)", "h ns", "p ns",
                                     "predicted m* B/(h-p)", "with innocuous term",
                                     "observed crossover", "per-repetition min-max",
                                     "observed / predicted"});
    unsigned inside = 0, hit = 0, hit_full = 0, outside = 0, outside_agree = 0;
    for (unsigned k = 0; k < st->count; k++) {
        const struct be_class *bc = &st->c[k];
        for (unsigned j = 0; bc->swept && j < bc->f_count; j++) {
            const struct be_point *pt = &bc->pt[j];
            bench_doc_cell(d, "%s", bc->spec->name);
            bench_doc_cell(d, "%u", pt->f);
            if (!pt->measured) {
                bench_doc_cell(d, "not measured: %s", pt->why_not);
                for (unsigned i = 0; i < 7; i++)
                    bench_doc_cell(d, "%s", "");
                continue;
            }
            char obs[96], spread[96];
            observed_text(pt, obs, sizeof(obs));
            spread_text(pt, reps, spread, sizeof(spread));
            bench_doc_cell(d, "%.0f (%u)", pt->b_ns.median, pt->blocks);
            bench_doc_cell(d, "%.0f", pt->h_ns.median);
            bench_doc_cell(d, "%.1f", pt->p_ns.median);
            bench_doc_cell(d, "%.2f", pt->predicted);
            bench_doc_cell(d, "%.2f", pt->predicted_full);
            bench_doc_cell(d, "%s", obs);
            bench_doc_cell(d, "%s", spread);
            if (pt->where == BENCH_CROSS_INSIDE && pt->predicted > 0) {
                double ratio = pt->observed / pt->predicted;
                double ratio_full = pt->predicted_full > 0 ? pt->observed / pt->predicted_full : 0;
                inside++;
                hit += fabs(ratio - 1) <= 0.25;
                hit_full += fabs(ratio_full - 1) <= 0.25;
                bench_doc_cell(d, "%.2f (full %.2f)%s%s", ratio, ratio_full,
                               fabs(ratio - 1) <= 0.25 ? "" : ": MISS, ", pt->reason);
            } else {
                bool below = pt->where == BENCH_CROSS_BELOW;
                bool agree = below ? below_agrees(pt) : above_agrees(pt);
                unsigned edge = pt->m[below ? 0 : pt->m_count - 1];
                bool strict = below ? pt->predicted < edge : pt->predicted > edge;
                outside++;
                outside_agree += agree;
                if (agree)
                    bench_doc_cell(d, "agree: %s m = %u%s", below ? "below" : "above", edge,
                                   strict ? "" : " (predicted within 25%)");
                else
                    bench_doc_cell(d, "outside the sweep, unlike the prediction (%s)", pt->reason);
            }
        }
    }
    bench_doc_table_end(d);
    if (inside)
        bench_doc_para(d,
                       "Crossover inside the sweep at %u points; the prediction B/(h-p) is "
                       "within 25%% of the observation at %u of them, the prediction with the "
                       "innocuous-code term at %u. Crossover outside the sweep at %u points, "
                       "the prediction agreeing at %u. Data: breakeven.csv (every sweep point), "
                       "results.json (breakeven_sweep).",
                       inside, hit, hit_full, outside, outside_agree);
    bench_doc_para(
        d, "B grows with F (dbt translates every innocuous instruction, in blocks of at most "
           "64), h and p do not: so m* grows with F, from below one execution (dbt wins at once) "
           "to hundreds. Classes that do not trap here are left out: their trap_emulate cost is "
           "native, not an h.");
}

static void json_num(FILE *f, const char *key, double v, bool valid)
{
    fprintf(f, ", \"%s\": ", key);
    if (valid)
        fprintf(f, "%.4g", v);
    else
        fprintf(f, "null");
}

static void breakeven_write_json(struct bench_ctx *ctx, const void *state, FILE *f)
{
    (void)ctx;
    const struct breakeven_state *st = state;
    bench_json_key(f, "breakeven_sweep");
    fprintf(f, "[");
    bool first = true;
    for (unsigned k = 0; k < st->count; k++) {
        const struct be_class *bc = &st->c[k];
        for (unsigned j = 0; bc->swept && j < bc->f_count; j++) {
            const struct be_point *pt = &bc->pt[j];
            bool in = pt->measured && pt->where == BENCH_CROSS_INSIDE;
            bool spread = in && pt->reps_without_crossing == 0;
            fprintf(f, "%s\n    {\"class\": ", first ? "" : ",");
            first = false;
            bench_json_str(f, bc->spec->name);
            fprintf(f, ", \"footprint_insns\": %u", pt->f);
            json_num(f, "B_ns", pt->b_ns.median, pt->measured);
            json_num(f, "h_ns", pt->h_ns.median, pt->measured);
            json_num(f, "p_ns", pt->p_ns.median, pt->measured);
            json_num(f, "predicted_m", pt->predicted, pt->measured && pt->predicted > 0);
            json_num(f, "observed_m", pt->observed, in);
            json_num(f, "observed_m_min", pt->observed_min, spread);
            json_num(f, "observed_m_max", pt->observed_max, spread);
            json_num(f, "predicted_m_full", pt->predicted_full,
                     pt->measured && pt->predicted_full > 0);
            json_num(f, "exec_trap_ns", pt->exec_trap_ns, pt->measured);
            json_num(f, "exec_dbt_ns", pt->exec_dbt_ns, pt->measured);
            fprintf(f, ", \"blocks_translated\": %u, \"crossing\": \"%s\"", pt->blocks,
                    !pt->measured                    ? "not measured"
                    : pt->where == BENCH_CROSS_BELOW ? "below the sweep"
                    : pt->where == BENCH_CROSS_ABOVE ? "above the sweep"
                                                     : "inside");
            fprintf(f, ", \"m_grid\": [");
            for (unsigned i = 0; i < pt->m_count; i++)
                fprintf(f, "%s%u", i ? ", " : "", pt->m[i]);
            fprintf(f, "]");
            if (!pt->measured) {
                fprintf(f, ", \"not_measured\": ");
                bench_json_str(f, pt->why_not);
            } else if (pt->reason[0]) {
                fprintf(f, ", \"miss_reason\": ");
                bench_json_str(f, pt->reason);
            }
            fputc('}', f);
        }
    }
    fprintf(f, "\n  ]");
    bench_json_key(f, "breakeven_left_out");
    fputc('[', f);
    first = true;
    for (unsigned k = 0; k < st->count; k++) {
        const struct be_class *bc = &st->c[k];
        if (bc->swept)
            continue;
        fprintf(f, "%s{\"class\": ", first ? "" : ", ");
        first = false;
        bench_json_str(f, bc->spec->name);
        fprintf(f, ", \"reason\": ");
        bench_json_str(f, bc->why_not);
        fputc('}', f);
    }
    fputc(']', f);
}

const struct bench_experiment bench_experiment_breakeven = {
    .name = "breakeven",
    .summary = "break-even sweep over F and m: predicted m* = B / (h - p) against observed",
    .state_size = sizeof(struct breakeven_state),
    .measure = breakeven_measure,
    .write_files = breakeven_write_files,
    .write_section = breakeven_write_section,
    .write_json = breakeven_write_json,
};
