/* bench_classes.c - experiment "classes": the cost of each sensitive-instruction class on
 * each backend (h on trap_emulate, p on dbt, the VM-exit cost on vtx), figure
 * cost_by_class.png, and the Adams & Agesen style table in cycles.
 *
 * Guest: [setup]; mark 1; N x {instruction; dec; jnz}; mark 2; N x {baseline; dec; jnz};
 * mark 3; exit. Cost per instruction = ((mark2 - mark1) - (mark3 - mark2)) / N.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"
#include "vmm/guest_layout.h"

#define B(...) {__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__})

static const struct bench_class_spec class_specs[] = {
    {.name = "cli", .body = B(0xfa)},
    {.name = "sti", .body = B(0xfb)},
    {.name = "pushf_popf",
     .note = "PUSHFQ+POPFQ pair; sensitive but unprivileged: never traps on trap_emulate",
     .body = B(0x9c, 0x9d),
     .never_traps = true,
     /* cli; pushfq; pop rax; and eax, IF: the guest's IF, 0 after its CLI */
     .check = B(0xfa, 0x9c, 0x58, 0x25, 0x00, 0x02, 0x00, 0x00),
     .check_want = 0,
     .check_what = "PUSHF after CLI shows IF = 1 (the host's flag, not the guest's)"},
    {.name = "cpuid",
     .note = "leaf 0; traps on trap_emulate only with CPUID faulting",
     .body = B(0x31, 0xc0, 0x0f, 0xa2),
     .base = B(0x31, 0xc0),
     .traps_if = "cpuid_traps"},
    {.name = "rdtsc",
     .note = "traps on trap_emulate only where PR_SET_TSC works",
     .body = B(0x0f, 0x31),
     .traps_if = "rdtsc_traps"},
    {.name = "in",
     .note = "IN AL, DX from the scratch port: an I/O exit to the VMM device",
     .setup = B(0x66, 0xba, PORT_SCRATCH & 0xff, PORT_SCRATCH >> 8),
     .body = B(0xec)},
    {.name = "out",
     .note = "OUT DX, AL to the scratch port: an I/O exit to the VMM device",
     .setup = B(0x66, 0xba, PORT_SCRATCH & 0xff, PORT_SCRATCH >> 8),
     .body = B(0xee)},
    {.name = "mov_cr3",
     .note = "write of the same CR3 value",
     .setup = B(0x0f, 0x20, 0xdb),
     .body = B(0x0f, 0x22, 0xdb)},
    {.name = "sgdt_lgdt",
     .note = "SGDT+LGDT pair (SGDT alone never traps on trap_emulate)",
     .body = B(0x0f, 0x01, 0x44, 0x24, 0xf0, 0x0f, 0x01, 0x54, 0x24, 0xf0),
     /* sgdt [rsp-16]; mov eax, [rsp-14]: the low half of the GDT base */
     .check = B(0x0f, 0x01, 0x44, 0x24, 0xf0, 0x8b, 0x44, 0x24, 0xf2),
     .check_want = (uint32_t)(GUEST_RAM_BASE + GUEST_GDT_OFFSET),
     .check_what = "SGDT returns a GDT base that is not the guest's"},
    {.name = "int_iretq",
     .note = "INT 0x30 to a handler that only does IRETQ",
     .body = B(0xcd, 0x30),
     .gate_vector = 0x30},
    {.name = "hlt_timer",
     .note = "STI; HLT woken by the 200 us virtual timer: per wake-up, period included",
     .body = B(0xf4),
     .gate_vector = 0x31,
     .timer = true},
};
#define CLASS_COUNT (sizeof(class_specs) / sizeof(class_specs[0]))

const struct bench_class_spec *bench_class_specs(unsigned *count)
{
    *count = CLASS_COUNT;
    return class_specs;
}

const struct bench_class_spec *bench_class_spec_find(const char *name)
{
    for (unsigned i = 0; i < CLASS_COUNT; i++)
        if (!strcmp(class_specs[i].name, name))
            return &class_specs[i];
    return NULL;
}

bool bench_class_traps(const struct bench_class_spec *s, const struct bench_host *host, char *why,
                       size_t why_size)
{
    if (s->never_traps) {
        snprintf(why, why_size, "sensitive but unprivileged: never traps at CPL 3");
        return false;
    }
    int t = bench_backend_index(host, "trap_emulate");
    if (s->traps_if && t >= 0 && host->backend[t]->host_has &&
        !host->backend[t]->host_has(s->traps_if)) {
        snprintf(why, why_size, "does not trap on this host (trap_emulate: no %s)", s->traps_if);
        return false;
    }
    return true;
}

struct class_result {
    const struct bench_class_spec *spec;
    unsigned iterations;
    bool measured[BENCH_MAX_BACKENDS];
    char why_not[BENCH_MAX_BACKENDS][BENCH_WHY_SIZE];
    struct bench_stats ns[BENCH_MAX_BACKENDS]; /* per instruction, baseline subtracted */
    bool wrong[BENCH_MAX_BACKENDS];            /* the result check failed */
    uint32_t wrong_value[BENCH_MAX_BACKENDS];
    bool native[BENCH_MAX_BACKENDS]; /* trap_emulate where it does not trap: a native cost */
    char native_why[256];
    double kvm_emulated;        /* vtx: kvm.insn_emulation per loop iteration (median), 0 if none */
    double insns_per_iteration; /* instructions a loop iteration executes, on average */
};

struct classes_state {
    unsigned count;
    struct class_result r[CLASS_COUNT];
};

/* Build the guest for one class: setup, timed loop, baseline loop, result check, exit, IRETQ
 * handler. Marks: 1, 2, 3 around the loops; the check's value as a fourth. */
static void build_class_guest(const struct bench_class_spec *s, uint32_t n, struct bench_code *c)
{
    c->n = 0;
    c->overflow = false;
    size_t gate_patch = 0;
    if (s->gate_vector > 0) {
        BENCH_EMIT(c, 0x48, 0xb8); /* movabs rax, gate (patched below) */
        gate_patch = c->n;
        bench_emit_u64(c, 0);
        BENCH_EMIT(c, 0x48, 0x89, 0x04, 0x25); /* mov [abs32], rax */
        bench_emit_u32(
            c, (uint32_t)(GUEST_RAM_BASE + GUEST_IDT_OFFSET + 16 * (uint64_t)s->gate_vector));
    }
    if (s->timer) {
        BENCH_EMIT(c, 0xb8);
        bench_emit_u32(c, (uint32_t)s->gate_vector);
        BENCH_EMIT(c, 0x66, 0xba, PORT_TIMER_VECTOR & 0xff, PORT_TIMER_VECTOR >> 8, 0xef);
        BENCH_EMIT(c, 0xb8);
        bench_emit_u32(c, 200);
        BENCH_EMIT(c, 0x66, 0xba, PORT_TIMER_PERIOD & 0xff, PORT_TIMER_PERIOD >> 8, 0xef);
        BENCH_EMIT(c, 0xfb); /* sti */
    }
    bench_emit(c, s->setup, s->setup_len);
    bench_emit_mark(c, 1);
    bench_emit_loop(c, n, s->body, s->body_len);
    bench_emit_mark(c, 2);
    bench_emit_loop(c, n, s->base, s->base_len);
    bench_emit_mark(c, 3);
    if (s->check_len) {
        bench_emit(c, s->check, s->check_len);
        bench_emit_mark_eax(c);
    }
    bench_emit_exit(c);
    if (s->gate_vector > 0) {
        uint64_t handler = GUEST_IMAGE_BASE + c->n;
        BENCH_EMIT(c, 0x48, 0xcf); /* iretq */
        /* 64-bit interrupt gate, selector 0x08 (SDM vol. 3A 6.14.1); handler < 4 GiB */
        uint64_t gate = (handler & 0xFFFF) | ((uint64_t)GUEST_SEL_CODE64 << 16) | (0x8EULL << 40) |
                        (((handler >> 16) & 0xFFFF) << 48);
        memcpy(c->b + gate_patch, &gate, 8);
    }
}

static void measure_one(struct bench_ctx *ctx, const struct bench_code *code, unsigned b,
                        struct class_result *cr)
{
    const struct bench_host *h = &ctx->host;
    const struct bench_class_spec *s = cr->spec;
    /* CPU time of the guest thread, except where the guest waits (HLT) */
    static const struct bench_marks cpu = {.cpu_time = true};
    double samples[32], emulated[32];
    unsigned got = 0, nemulated = 0;
    bench_progress(ctx, "bench: %-10s on %-12s ", s->name, h->backend_name[b]);
    for (unsigned r = 0; r < ctx->opt->repetitions; r++) {
        struct machine_result *res =
            bench_run_guest_marks(h->backend[b], code, 20.0, s->check_len ? 4 : 3,
                                  s->timer ? NULL : &cpu, cr->why_not[b], sizeof(cr->why_not[b]));
        if (!res)
            break;
        const uint64_t *t = s->timer ? res->mark_ns : res->mark_cpu_ns;
        double loop = (double)(t[1] - t[0]), base = (double)(t[2] - t[1]), e;
        samples[got++] = (loop - base) / cr->iterations;
        if (s->check_len && res->mark_value[3] != s->check_want) {
            cr->wrong[b] = true;
            cr->wrong_value[b] = res->mark_value[3];
        }
        if (bench_result_stat(res, "kvm.insn_emulation", &e))
            emulated[nemulated++] = e / (2.0 * cr->iterations);
        free(res);
        bench_progress(ctx, ".");
    }
    if (got != ctx->opt->repetitions) {
        bench_progress(ctx, " not measured: %s\n", cr->why_not[b]);
        return;
    }
    cr->measured[b] = true;
    cr->why_not[b][0] = 0;
    bench_stats_of(samples, got, &cr->ns[b]);
    if (nemulated == got)
        cr->kvm_emulated = bench_median(emulated, nemulated);
    bench_progress(ctx, " median %.1f ns%s\n", cr->ns[b].median,
                   cr->wrong[b] ? ", WRONG RESULT" : "");
}

static void classes_measure(struct bench_ctx *ctx, void *state)
{
    struct classes_state *st = state;
    const struct bench_options *o = ctx->opt;
    const struct bench_host *h = &ctx->host;
    st->count = CLASS_COUNT;
    static struct bench_code code;
    for (unsigned k = 0; k < CLASS_COUNT; k++) {
        const struct bench_class_spec *s = &class_specs[k];
        struct class_result *cr = &st->r[k];
        cr->spec = s;
        cr->iterations = s->timer ? (o->quick ? 30 : 100) : (o->quick ? 5000 : 20000);
        /* the two loops: instruction(s) + dec + jnz, and the baseline + dec + jnz */
        cr->insns_per_iteration = (bench_count_insns(s->body, s->body_len) +
                                   bench_count_insns(s->base, s->base_len) + 4) /
                                  2.0;
        build_class_guest(s, cr->iterations, &code);
        int t = bench_backend_index(h, "trap_emulate");
        if (t >= 0 && !bench_class_traps(s, h, cr->native_why, sizeof(cr->native_why)))
            cr->native[t] = true;
        for (unsigned b = 0; b < h->backend_count; b++) {
            if (!h->backend_available[b])
                snprintf(cr->why_not[b], sizeof(cr->why_not[b]), "backend unavailable: %s",
                         h->backend_note[b]);
            else
                measure_one(ctx, &code, b, cr);
        }
    }
}

static const char *const backend_colors[BENCH_MAX_BACKENDS] = {"#0072B2", "#E69F00", "#009E73"};

/* A bar's label: the median as it would be read off a table. */
static void value_label(double v, char *buf, size_t size)
{
    if (v < 0.05)
        snprintf(buf, size, "~0");
    else if (v < 10)
        snprintf(buf, size, "%.1f", v);
    else
        snprintf(buf, size, "%.0f", v);
}

static void classes_write_files(struct bench_ctx *ctx, const void *state)
{
    const struct classes_state *st = state;
    const struct bench_host *h = &ctx->host;
    FILE *f = bench_file_open(ctx, "classes.csv");
    if (f) {
        fprintf(f, "class,backend,iterations,measured,median_ns,q1_ns,q3_ns,min_ns,max_ns,"
                   "median_cycles,result,kvm_insn_emulation_per_iteration,note\n");
        for (unsigned k = 0; k < st->count; k++) {
            const struct class_result *c = &st->r[k];
            for (unsigned b = 0; b < h->backend_count; b++) {
                const struct bench_stats *s = &c->ns[b];
                if (c->measured[b])
                    fprintf(f, "%s,%s,%u,yes,%.2f,%.2f,%.2f,%.2f,%.2f,%.0f,%s,", c->spec->name,
                            h->backend_name[b], c->iterations, s->median, s->q1, s->q3, s->min,
                            s->max, s->median * h->tsc_ghz, c->wrong[b] ? "WRONG" : "ok");
                else
                    fprintf(f, "%s,%s,%u,no,,,,,,,,", c->spec->name, h->backend_name[b],
                            c->iterations);
                if (c->measured[b] && !strcmp(h->backend_name[b], "vtx") && c->kvm_emulated > 0)
                    fprintf(f, "%.2f", c->kvm_emulated);
                fprintf(f, ",\"%s\"\n",
                        !c->measured[b] ? c->why_not[b]
                        : c->wrong[b]   ? c->spec->check_what
                                        : (c->spec->note ? c->spec->note : ""));
            }
        }
        bench_file_close(ctx, f);
    }
    /* classes.dat: one block per backend; x, median (floored at 0.1 for the log scale), Q1, Q3
     * (floored too), label, state (0 measured, 1 wrong result, 2 not measured, 3 native: it
     * does not trap here). The timer class (its figure is the timer period) is left to the
     * table. */
    const double width = 0.8 / h->backend_count;
    double top = 1; /* the tallest bar: room above it for the rotated labels */
    for (unsigned k = 0; k < st->count; k++)
        for (unsigned b = 0; b < h->backend_count; b++)
            if (!st->r[k].spec->timer && st->r[k].measured[b] && st->r[k].ns[b].q3 > top)
                top = st->r[k].ns[b].q3;
    f = bench_file_open(ctx, "classes.dat");
    unsigned drawn = 0, states[BENCH_MAX_BACKENDS] = {0}; /* which states each backend has */
    if (f) {
        for (unsigned b = 0; b < h->backend_count; b++) {
            fprintf(f, "# %s: x median q1 q3 label state\n", h->backend_name[b]);
            drawn = 0;
            for (unsigned k = 0; k < st->count; k++) {
                const struct class_result *c = &st->r[k];
                if (c->spec->timer)
                    continue;
                double x = drawn++ + (b - (h->backend_count - 1) / 2.0) * width;
                char label[32];
                if (!c->measured[b]) {
                    fprintf(f, "%.3f 0.1 0.1 0.1 \"not measured\" 2\n", x);
                    states[b] |= 1u << 2;
                    continue;
                }
                value_label(c->ns[b].median, label, sizeof(label));
                int state = c->wrong[b] ? 1 : c->native[b] ? 3 : 0;
                states[b] |= 1u << state;
                fprintf(f, "%.3f %.3f %.3f %.3f \"%s\" %d\n", x, fmax(c->ns[b].median, 0.1),
                        fmax(c->ns[b].q1, 0.1), fmax(c->ns[b].q3, 0.1), label, state);
            }
            fprintf(f, "\n\n");
        }
        bench_file_close(ctx, f);
    }
    char caption[1024];
    bench_caption(ctx, caption, sizeof(caption));
    f = bench_file_open(ctx, "cost_by_class.gp");
    if (!f)
        return;
    fprintf(f,
            "set datafile missing 'NaN'\nset logscale y\nset grid ytics\n"
            "set style fill solid 0.85 border -1\nset boxwidth %.3f absolute\n"
            "set ylabel 'cost per instruction, ns (log scale; loop minus the same loop without "
            "it)'\nset xrange [-0.6:%u.6]\nset yrange [0.05:%g]\n"
            "set key outside bottom center horizontal font ',11'\n"
            "set title \"Cost of one sensitive instruction by backend: bars median, whiskers "
            "Q1-Q3, label the median in ns\\nhatched red: WRONG RESULT (it did not trap, so "
            "the guest saw the host's state); hatched: native cost, the instruction does not "
            "trap here;\\nthe timer class (200 us period included) is in the table only\\n%s\" "
            "font ',10'\n",
            width, drawn ? drawn - 1 : 0, top * 100, caption);
    fprintf(f, "set xtics (");
    unsigned i = 0;
    for (unsigned k = 0; k < st->count; k++)
        if (!st->r[k].spec->timer)
            fprintf(f, "%s'%s' %u", i ? ", " : "", st->r[k].spec->name, i), i++;
    fprintf(f, ") rotate by -25 font ',11'\n");
    const char *fmts[] = {"pngcairo size 1400,800 noenhanced", "svg size 1400,800 noenhanced"};
    const char *exts[] = {"png", "svg"};
    for (int t = 0; t < 2; t++) {
        fprintf(f, "set terminal %s\nset output 'cost_by_class.%s'\nplot ", fmts[t], exts[t]);
        for (unsigned b = 0; b < h->backend_count; b++) {
            const char *flavor = !h->backend_available[b] ? " (not measured here)"
                                 : !strcmp(h->backend_name[b], "vtx") && h->kvm_is_pvm
                                     ? " (KVM is PVM here: software, not VT-x/AMD-V)"
                                     : "";
            /* only the series that have points (gnuplot warns about empty ones) */
            fprintf(f,
                    "%s'classes.dat' index %u using 1:($6==0?$2:NaN) with boxes lc rgb '%s' "
                    "title '%s%s', '' index %u using 1:($6==0?$2:NaN):3:4 with yerrorbars "
                    "lc rgb 'black' pt 0 ps 0 notitle, "
                    "'' index %u using 1:($6==0?$2*1.25:NaN):5 with labels font ',8' notitle",
                    b ? ", " : "", b, backend_colors[b], h->backend_name[b], flavor, b, b);
            if (states[b] & (1u << 1))
                fprintf(f,
                        ", '' index %u using 1:($6==1?$2:NaN) with boxes fs pattern 4 border "
                        "rgb 'red' lc rgb 'red' notitle, '' index %u using 1:($6==1?$2*1.25:NaN):"
                        "(sprintf('%%s WRONG RESULT', strcol(5))) with labels rotate by 90 left "
                        "font ',9' tc rgb 'red' notitle",
                        b, b);
            if (states[b] & (1u << 3))
                fprintf(f,
                        ", '' index %u using 1:($6==3?$2:NaN) with boxes fs pattern 2 border "
                        "rgb '%s' lc rgb '%s' notitle, '' index %u using 1:($6==3?$2*1.25:NaN):"
                        "(sprintf('%%s native: does not trap here', strcol(5))) with labels "
                        "rotate by 90 left font ',9' tc rgb '%s' notitle",
                        b, backend_colors[b], backend_colors[b], b, backend_colors[b]);
            if (states[b] & (1u << 2))
                fprintf(f,
                        ", '' index %u using 1:($6==2?0.06:NaN):(sprintf('%s: not measured')) "
                        "with labels rotate by 90 left font ',9' tc rgb '#555555' notitle",
                        b, h->backend_name[b]);
        }
        fprintf(f, "\n");
    }
    bench_file_close(ctx, f);
    bench_plot(ctx, "cost_by_class.gp");
}

static void classes_write_section(struct bench_ctx *ctx, const void *state, struct bench_doc *d)
{
    const struct classes_state *st = state;
    const struct bench_host *h = &ctx->host;
    bench_doc_heading(d, "Cost per sensitive instruction (h, p, VM-exit cost)");
    bench_doc_figure(d, "cost_by_class.png", "cost of one sensitive instruction by backend");
    const char *head[2 + BENCH_MAX_BACKENDS];
    char names[BENCH_MAX_BACKENDS][64];
    head[0] = "class";
    for (unsigned b = 0; b < h->backend_count; b++) {
        snprintf(names[b], sizeof(names[b]), "%s ns median (Q1-Q3)", h->backend_name[b]);
        head[1 + b] = names[b];
    }
    head[1 + h->backend_count] = "note";
    bench_doc_table(d, 2 + h->backend_count, head);
    int vtx = bench_backend_index(h, "vtx");
    for (unsigned k = 0; k < st->count; k++) {
        const struct class_result *c = &st->r[k];
        bench_doc_cell(d, "%s", c->spec->name);
        for (unsigned b = 0; b < h->backend_count; b++) {
            char emu[96] = "";
            if ((int)b == vtx && c->kvm_emulated > 0)
                snprintf(emu, sizeof(emu), "; KVM emulated %.2f instructions per iteration of %.1f",
                         c->kvm_emulated, c->insns_per_iteration);
            if (!c->measured[b])
                bench_doc_cell(d, "not measured: %s", c->why_not[b]);
            else if (c->wrong[b])
                bench_doc_cell(d, "%.1f (%.1f-%.1f): **WRONG RESULT** (%s: got %#x, want %#x)",
                               c->ns[b].median, c->ns[b].q1, c->ns[b].q3, c->spec->check_what,
                               c->wrong_value[b], c->spec->check_want);
            else if (c->native[b])
                bench_doc_cell(d, "%.1f (%.1f-%.1f): native, not an h: %s", c->ns[b].median,
                               c->ns[b].q1, c->ns[b].q3, c->native_why);
            else
                bench_doc_cell(d, "%.1f (%.1f-%.1f)%s", c->ns[b].median, c->ns[b].q1, c->ns[b].q3,
                               emu);
        }
        bench_doc_cell(d, "%s", c->spec->note ? c->spec->note : "");
    }
    bench_doc_table_end(d);
    bench_doc_para(
        d, "On trap_emulate, the cost of a trapped instruction is **h** (kernel round trip plus "
           "decode and emulation); on dbt it is **p** (the translated instruction: an inline "
           "sequence or a callout), on vtx the VM exit and its handling. Times are the CPU time "
           "of the thread running the guest (the VMM reads CLOCK_THREAD_CPUTIME_ID at each "
           "mark), so that other processes of a shared machine do not enter them; hlt_timer, "
           "whose guest waits for the timer, uses the monotonic clock. Each figure is the loop "
           "with the instruction minus the same loop without it, divided by the iterations; a "
           "median near zero (even slightly negative) means the instruction costs less than the "
           "noise of that subtraction: dbt's inline CLI/STI is one store that retires alongside "
           "the loop's own instructions.");
    bench_doc_para(
        d, "Instructions that are sensitive but unprivileged (PUSHF/POPF, SGDT) do not trap on "
           "trap_emulate: their cost there is native, and a check the guest runs after the "
           "loops shows that their result is wrong (**WRONG RESULT**): the Popek-Goldberg "
           "violation of classic x86, also in the conformance matrix. Such a figure is not an "
           "h.");
    if (vtx >= 0 && h->kvm_is_pvm)
        bench_doc_para(
            d,
            "**vtx on this host is PVM**, not VT-x/AMD-V: a guest that is not PVM-aware runs "
            "deprivileged and KVM emulates its instructions one by one. kvm.insn_emulation (KVM's "
            "own statistic, read after each run) divided by the loop iterations is printed "
            "beside each vtx figure, with the instructions one iteration executes (decoded from "
            "the generated loop): where they are equal, KVM emulated every instruction of the "
            "guest, and the vtx figure is the cost of that emulation, not of a VM exit.");
    bench_doc_heading(d, "Adams & Agesen style comparison");
    bench_doc_para(
        d,
        "Adams and Agesen (ASPLOS 2006, \"A Comparison of Software and Hardware Techniques for "
        "x86 Virtualization\") compare native, software-VMM and hardware-VMM cycles per "
        "operation on a Pentium 4 of 2006. Their published figures are not reproduced here (the "
        "paper is not available offline to this build and no number is typed in by hand); this "
        "host's figures in cycles (TSC %.3f GHz) for a software technique (trap_emulate) and the "
        "KVM backend%s:",
        h->tsc_ghz, h->kvm_is_pvm ? " (PVM here: software too)" : "");
    int t = bench_backend_index(h, "trap_emulate");
    bench_doc_table(d, 3, (const char *[]){"operation", "trap_emulate cycles", "vtx cycles"});
    for (unsigned k = 0; k < st->count; k++) {
        const struct class_result *c = &st->r[k];
        bench_doc_cell(d, "%s", c->spec->name);
        int cols[2] = {t, vtx};
        for (unsigned i = 0; i < 2; i++)
            if (cols[i] >= 0 && c->measured[cols[i]])
                bench_doc_cell(d, "%.0f%s", c->ns[cols[i]].median * h->tsc_ghz,
                               c->wrong[cols[i]]    ? " (WRONG RESULT)"
                               : c->native[cols[i]] ? " (native: does not trap here)"
                                                    : "");
            else
                bench_doc_cell(d, "not measured");
    }
    bench_doc_table_end(d);
    bench_doc_para(d,
                   "The syscall row of the original table corresponds here to the getppid "
                   "figure above (%.0f cycles natively).",
                   h->syscall_ns.median * h->tsc_ghz);
}

static void classes_write_json(struct bench_ctx *ctx, const void *state, FILE *f)
{
    const struct classes_state *st = state;
    const struct bench_host *h = &ctx->host;
    bench_json_key(f, "classes");
    fprintf(f, "[\n");
    for (unsigned k = 0; k < st->count; k++) {
        const struct class_result *c = &st->r[k];
        fprintf(f, "    {\"class\": ");
        bench_json_str(f, c->spec->name);
        fprintf(f, ", \"iterations\": %u, \"note\": ", c->iterations);
        bench_json_str(f, c->spec->note ? c->spec->note : "");
        fprintf(f, ", \"per_backend_ns\": {");
        for (unsigned b = 0; b < h->backend_count; b++) {
            fprintf(f, "%s", b ? ", " : "");
            bench_json_str(f, h->backend_name[b]);
            fprintf(f, ": ");
            if (c->measured[b])
                bench_json_stats(f, &c->ns[b]);
            else
                bench_json_not_measured(f, c->why_not[b]);
        }
        fprintf(f, "}, \"wrong_result\": [");
        bool first = true;
        for (unsigned b = 0; b < h->backend_count; b++)
            if (c->wrong[b]) {
                fprintf(f, "%s", first ? "" : ", ");
                bench_json_str(f, h->backend_name[b]);
                first = false;
            }
        fprintf(f, "]");
        if (c->kvm_emulated > 0)
            fprintf(f,
                    ", \"vtx_kvm_insn_emulation_per_iteration\": %.3f, "
                    "\"instructions_per_iteration\": %.1f",
                    c->kvm_emulated, c->insns_per_iteration);
        fprintf(f, "}%s\n", k + 1 < st->count ? "," : "");
    }
    fprintf(f, "  ]");
}

const struct bench_experiment bench_experiment_classes = {
    .name = "classes",
    .summary = "cost of each sensitive-instruction class on each backend (h, p, VM exit)",
    .state_size = sizeof(struct classes_state),
    .measure = classes_measure,
    .write_files = classes_write_files,
    .write_section = classes_write_section,
    .write_json = classes_write_json,
};
