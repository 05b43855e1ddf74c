/* bench_xstate.c - experiment "xstate": what keeping the guest's extended state costs dbt.
 *
 * dbt saves the guest's vector registers and MXCSR at every exit from translated code to host
 * code and restores them on the way back (backends/dbt/dbt_stubs.c), and puts the x87 unit
 * aside when vcpu_run returns to the VMM if the guest has used it (dbt.c). The cost per
 * callout is measured on CPUID (the block continues after the emulation core ran, no VMM
 * exit) and OUT (an exit to the VMM and back), the latter also in a guest that used x87. Each guest
 * runs the classes experiment's loop (N callouts, then the same loop without them; cost =
 * difference / N) in several rounds and keeps the fastest of each; guests run alternately on a vCPU
 * that saves the state and on one whose stubs leave it to host code as dbt did before
 * (dbt_bench_without_xstate, read when the vCPU is created in the child process): one run of the
 * benchmark gives both figures. A second table compares, in this process, the plain moves the stubs
 * use with XSAVEOPT/XRSTOR of the same components (TSC, best of many). */
#include <cpuid.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/host_x87.h"
#include "backends/dbt/dbt.h"
#include "bench_internal.h"
#include "vmm/guest_layout.h"

enum { XS_CPUID, XS_OUT, XS_OUT_X87, XS_CASES };
static const char *const xs_case_name[XS_CASES] = {"cpuid", "out", "out_x87"};
static const char *const xs_case_note[XS_CASES] = {
    "CPUID leaf 0: a callout after which the block continues (no VMM exit)",
    "OUT to the scratch port: a callout that exits to the VMM and comes back",
    "the same OUT in a guest that has used the x87 unit (the registers stay live at VMM exits)"};

struct xstate_state {
    bool measured;
    char why_not[BENCH_WHY_SIZE];
    char saved[96]; /* what the stubs save on this host */
    unsigned iterations[XS_CASES];
    struct bench_stats with_ns[XS_CASES], without_ns[XS_CASES], added_ns[XS_CASES];
    /* the same components, in this process (cycles of the TSC per save + restore) */
    bool micro_measured;
    char micro_why[BENCH_WHY_SIZE];
    double moves_cycles, xsave_cycles;
};

/* K rounds of (N callouts, the same loop without them), a mark before each loop: the machine
 * is shared, so each run keeps the fastest round of each (preemption only adds time). */
#define XS_ROUNDS 30

static void build_guest(unsigned which, uint32_t n, struct bench_code *c)
{
    static const uint8_t cpuid_body[] = {0x31, 0xc0, 0x0f, 0xa2}; /* xor eax, eax; cpuid */
    static const uint8_t cpuid_base[] = {0x31, 0xc0};
    static const uint8_t out_body[] = {0xee}; /* out dx, al */
    static const uint8_t nothing[1] = {0};
    c->n = 0;
    c->overflow = false;
    if (which != XS_CPUID)
        BENCH_EMIT(c, 0x66, 0xba, PORT_SCRATCH & 0xff, PORT_SCRATCH >> 8); /* mov dx, port */
    if (which == XS_OUT_X87)
        BENCH_EMIT(c, 0xd9, 0xe8, 0xdd, 0xd8); /* fld1; fstp st(0): the guest used x87 */
    for (unsigned r = 0; r < XS_ROUNDS; r++) {
        bench_emit_mark(c, 1 + 2 * r);
        if (which == XS_CPUID)
            bench_emit_loop(c, n, cpuid_body, sizeof(cpuid_body));
        else
            bench_emit_loop(c, n, out_body, sizeof(out_body));
        bench_emit_mark(c, 2 + 2 * r);
        if (which == XS_CPUID)
            bench_emit_loop(c, n, cpuid_base, sizeof(cpuid_base));
        else
            bench_emit_loop(c, n, nothing, 0);
    }
    bench_emit_mark(c, 1 + 2 * XS_ROUNDS);
    bench_emit_exit(c);
}

/* One run: ns per callout (fastest loop - fastest baseline, / n), or < 0 with why. */
static double run_once(const struct backend_ops *dbt, const struct bench_code *c, uint32_t n,
                       bool save, char *why, size_t why_size)
{
    dbt_bench_without_xstate = !save; /* inherited by the child that runs the guest */
    struct machine_result *res = bench_run_guest(dbt, c, 30.0, 2 * XS_ROUNDS + 1, why, why_size);
    dbt_bench_without_xstate = false;
    if (!res)
        return -1;
    double loop = 1e300, base = 1e300;
    for (unsigned r = 0; r < XS_ROUNDS; r++) {
        double l = (double)(res->mark_ns[2 * r + 1] - res->mark_ns[2 * r]);
        double b = (double)(res->mark_ns[2 * r + 2] - res->mark_ns[2 * r + 1]);
        loop = l < loop ? l : loop;
        base = b < base ? b : base;
    }
    free(res);
    return (loop - base) / n;
}

static uint64_t tsc(void)
{
    unsigned lo, hi;
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi)::"rcx");
    return ((uint64_t)hi << 32) | lo;
}

/* The stubs' plain moves against XSAVEOPT + XRSTOR of the same components, best of many
 * back-to-back batches (the machine is shared: the minimum is the cost, the rest is noise). */
static void measure_micro(struct xstate_state *st)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) {
        snprintf(st->micro_why, sizeof(st->micro_why), "no XSAVE on this host");
        return;
    }
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    static uint8_t area[8192] __attribute__((aligned(64)));
    static uint8_t regs[32 * 64 + 64] __attribute__((aligned(64)));
    memset(area, 0, sizeof(area));
    uint32_t mxcsr = 0x1F80;
    memcpy(area + 24, &mxcsr, 4);
    uint32_t rfbm = lo & 0xE7; /* x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM where enabled */
    host_x87_claim();          /* the XRSTOR below loads an x87 state: a dbt guest's may be live */
    enum { BATCH = 100, TRIALS = 2000 };
    uint64_t best_x = ~0ULL, best_m = ~0ULL;
    bool zmm = (lo & 0xE6) == 0xE6, ymm = (lo & 6) == 6;
    for (unsigned t = 0; t < TRIALS; t++) {
        uint64_t t0 = tsc();
        for (unsigned i = 0; i < BATCH; i++)
            __asm__ volatile("xrstor (%0)\n xsaveopt (%0)" ::"r"(area), "a"(rfbm), "d"(0)
                             : "memory");
        uint64_t t1 = tsc();
        for (unsigned i = 0; i < BATCH; i++) {
            if (zmm)
                __asm__ volatile(
                    ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,"
                    "25,26,27,28,29,30,31\n vmovdqu64 %%zmm\\r, \\r*64(%0)\n .endr\n"
                    ".irp r,0,1,2,3,4,5,6,7\n kmovw %%k\\r, 2048+\\r*2(%0)\n .endr\n"
                    "stmxcsr 2080(%0)\n ldmxcsr 2084(%0)\n"
                    ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,"
                    "25,26,27,28,29,30,31\n vmovdqu64 \\r*64(%0), %%zmm\\r\n .endr\n"
                    ".irp r,0,1,2,3,4,5,6,7\n kmovw 2048+\\r*2(%0), %%k\\r\n .endr\n"
                    "ldmxcsr 2080(%0)\n" ::"r"(regs)
                    : "memory");
            else if (ymm)
                __asm__ volatile(".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
                                 " vmovdqu %%ymm\\r, \\r*32(%0)\n .endr\n"
                                 "stmxcsr 2080(%0)\n ldmxcsr 2084(%0)\n"
                                 ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
                                 " vmovdqu \\r*32(%0), %%ymm\\r\n .endr\n"
                                 "ldmxcsr 2080(%0)\n" ::"r"(regs)
                                 : "memory");
            else
                __asm__ volatile(".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
                                 " movdqu %%xmm\\r, \\r*16(%0)\n .endr\n"
                                 "stmxcsr 2080(%0)\n ldmxcsr 2084(%0)\n"
                                 ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
                                 " movdqu \\r*16(%0), %%xmm\\r\n .endr\n"
                                 "ldmxcsr 2080(%0)\n" ::"r"(regs)
                                 : "memory");
        }
        uint64_t t2 = tsc();
        if (t1 - t0 < best_x)
            best_x = t1 - t0;
        if (t2 - t1 < best_m)
            best_m = t2 - t1;
    }
    st->xsave_cycles = (double)best_x / BATCH;
    st->moves_cycles = (double)best_m / BATCH;
    st->micro_measured = true;
}

static void xstate_measure(struct bench_ctx *ctx, void *state)
{
    struct xstate_state *st = state;
    const struct bench_host *h = &ctx->host;
    int dbt = bench_backend_index(h, "dbt");
    if (dbt < 0 || !h->backend_available[dbt]) {
        snprintf(st->why_not, sizeof(st->why_not), "dbt unavailable");
        return;
    }
    snprintf(st->saved, sizeof(st->saved), "%s", dbt_saved_state_description());
    measure_micro(st);
    static struct bench_code code;
    unsigned reps = ctx->opt->repetitions;
    for (unsigned k = 0; k < XS_CASES; k++) {
        uint32_t n = k == XS_CPUID ? 2000 : 500; /* per round: short, so rounds fit in slices */
        st->iterations[k] = n;
        build_guest(k, n, &code);
        bench_progress(ctx, "bench: xstate %-6s ", xs_case_name[k]);
        double with[32], without[32], added[32];
        for (unsigned r = 0; r < reps; r++) { /* alternate, so that drift hits both alike */
            with[r] = run_once(h->backend[dbt], &code, n, true, st->why_not, sizeof(st->why_not));
            without[r] =
                run_once(h->backend[dbt], &code, n, false, st->why_not, sizeof(st->why_not));
            if (with[r] < 0 || without[r] < 0) {
                bench_progress(ctx, " not measured: %s\n", st->why_not);
                return;
            }
            added[r] = with[r] - without[r];
            bench_progress(ctx, ".");
        }
        bench_stats_of(with, reps, &st->with_ns[k]);
        bench_stats_of(without, reps, &st->without_ns[k]);
        bench_stats_of(added, reps, &st->added_ns[k]);
        bench_progress(ctx, " %.1f ns -> %.1f ns\n", st->without_ns[k].median,
                       st->with_ns[k].median);
    }
    st->measured = true;
    st->why_not[0] = 0;
}

static void xstate_write_files(struct bench_ctx *ctx, const void *state)
{
    const struct xstate_state *st = state;
    FILE *f = bench_file_open(ctx, "xstate.csv");
    if (!f)
        return;
    fprintf(f, "callout,iterations,without_median_ns,with_median_ns,added_median_ns,"
               "added_q1_ns,added_q3_ns,saved\n");
    if (!st->measured)
        fprintf(f, ",,,,,,,\"not measured: %s\"\n", st->why_not);
    else
        for (unsigned k = 0; k < XS_CASES; k++)
            fprintf(f, "%s,%u,%.2f,%.2f,%.2f,%.2f,%.2f,\"%s\"\n", xs_case_name[k],
                    st->iterations[k], st->without_ns[k].median, st->with_ns[k].median,
                    st->added_ns[k].median, st->added_ns[k].q1, st->added_ns[k].q3, st->saved);
    bench_file_close(ctx, f);
}

static void xstate_write_section(struct bench_ctx *ctx, const void *state, struct bench_doc *d)
{
    const struct xstate_state *st = state;
    bench_doc_heading(d, "dbt: the cost of keeping the guest's extended state");
    if (!st->measured) {
        bench_doc_para(d, "Not measured: %s.", st->why_not);
        return;
    }
    bench_doc_para(d,
                   "At every exit from translated code to host code dbt saves the guest's %s "
                   "and loads the host's MXCSR; of the x87 unit only the control word is handed "
                   "to the VMM when vcpu_run returns, and only in guests that used it (the "
                   "registers are put aside lazily, when other code claims the unit). Per "
                   "callout, measured in "
                   "one run by alternating vCPUs "
                   "that save the state and vCPUs whose stubs leave it to host code (as dbt "
                   "did before); each run keeps the fastest of %d rounds, %u runs each, "
                   "medians, spread of the added cost Q1-Q3. Data: xstate.csv.",
                   st->saved, XS_ROUNDS, ctx->opt->repetitions);
    bench_doc_table(
        d, 5, (const char *[]){"callout", "without (ns)", "with (ns)", "added (ns)", "what it is"});
    for (unsigned k = 0; k < XS_CASES; k++) {
        bench_doc_cell(d, "%s", xs_case_name[k]);
        bench_doc_cell(d, "%.1f", st->without_ns[k].median);
        bench_doc_cell(d, "%.1f", st->with_ns[k].median);
        bench_doc_cell(d, "%.1f (%.1f to %.1f)", st->added_ns[k].median, st->added_ns[k].q1,
                       st->added_ns[k].q3);
        bench_doc_cell(d, "%s", xs_case_note[k]);
    }
    bench_doc_table_end(d);
    if (st->micro_measured)
        bench_doc_para(d,
                       "Why plain moves: in this process, saving and restoring the same "
                       "registers with moves takes %.0f TSC cycles, XSAVEOPT + XRSTOR of the "
                       "corresponding XSAVE components %.0f (%.1f GHz TSC; best of 2000 "
                       "batches of 100).",
                       st->moves_cycles, st->xsave_cycles, ctx->host.tsc_ghz);
    else
        bench_doc_para(d, "XSAVEOPT comparison not measured: %s.", st->micro_why);
}

static void xstate_write_json(struct bench_ctx *ctx, const void *state, FILE *f)
{
    (void)ctx;
    const struct xstate_state *st = state;
    bench_json_key(f, "xstate");
    if (!st->measured) {
        bench_json_not_measured(f, st->why_not);
        return;
    }
    fprintf(f, "{\"saved\": ");
    bench_json_str(f, st->saved);
    for (unsigned k = 0; k < XS_CASES; k++) {
        fprintf(f, ", \"%s\": {\"iterations\": %u, \"without_ns\": ", xs_case_name[k],
                st->iterations[k]);
        bench_json_stats(f, &st->without_ns[k]);
        fprintf(f, ", \"with_ns\": ");
        bench_json_stats(f, &st->with_ns[k]);
        fprintf(f, ", \"added_ns\": ");
        bench_json_stats(f, &st->added_ns[k]);
        fputc('}', f);
    }
    if (st->micro_measured)
        fprintf(f, ", \"moves_cycles\": %.1f, \"xsaveopt_xrstor_cycles\": %.1f", st->moves_cycles,
                st->xsave_cycles);
    fputc('}', f);
}

const struct bench_experiment bench_experiment_xstate = {
    .name = "xstate",
    .summary = "dbt: cost per callout of keeping the guest's extended state",
    .state_size = sizeof(struct xstate_state),
    .measure = xstate_measure,
    .write_files = xstate_write_files,
    .write_section = xstate_write_section,
    .write_json = xstate_write_json,
};
