/* bench_classes.c - experiment "classes": the cost of each sensitive-instruction class on
 * each backend (h on trap_emulate, p on dbt, the VM-exit cost on vtx), figure
 * cost_by_class.png, and the Adams & Agesen style table in cycles.
 *
 * Guest: [setup]; mark 1; N x {instruction; dec; jnz}; mark 2; N x {baseline; dec; jnz};
 * mark 3; exit. Cost per instruction = ((mark2 - mark1) - (mark3 - mark2)) / N.
 */
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
     .never_traps = true},
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
     .body = B(0x0f, 0x01, 0x44, 0x24, 0xf0, 0x0f, 0x01, 0x54, 0x24, 0xf0)},
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
};

struct classes_state {
    unsigned count;
    struct class_result r[CLASS_COUNT];
};

/* Build the guest for one class: setup, timed loop, baseline loop, exit, IRETQ handler. */
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
        build_class_guest(s, cr->iterations, &code);
        for (unsigned b = 0; b < h->backend_count; b++) {
            if (!h->backend_available[b]) {
                snprintf(cr->why_not[b], sizeof(cr->why_not[b]), "backend unavailable: %s",
                         h->backend_note[b]);
                continue;
            }
            bench_progress(ctx, "bench: %-10s on %-12s ", s->name, h->backend_name[b]);
            double samples[32];
            unsigned got = 0;
            for (unsigned r = 0; r < o->repetitions; r++) {
                struct machine_result *res = bench_run_guest(
                    h->backend[b], &code, 20.0, 3, cr->why_not[b], sizeof(cr->why_not[b]));
                if (!res)
                    break;
                double loop = (double)(res->mark_ns[1] - res->mark_ns[0]);
                double base = (double)(res->mark_ns[2] - res->mark_ns[1]);
                free(res);
                samples[got++] = (loop - base) / cr->iterations;
                bench_progress(ctx, ".");
            }
            if (got == o->repetitions) {
                cr->measured[b] = true;
                cr->why_not[b][0] = 0;
                bench_stats_of(samples, got, &cr->ns[b]);
                bench_progress(ctx, " median %.1f ns\n", cr->ns[b].median);
            } else {
                bench_progress(ctx, " not measured: %s\n", cr->why_not[b]);
            }
        }
    }
}

bool bench_classes_cost(const void *state, const char *cls, int backend, double *median_ns)
{
    const struct classes_state *st = state;
    for (unsigned k = 0; st && backend >= 0 && k < st->count; k++)
        if (!strcmp(st->r[k].spec->name, cls) && st->r[k].measured[backend]) {
            *median_ns = st->r[k].ns[backend].median;
            return true;
        }
    return false;
}

static void classes_write_files(struct bench_ctx *ctx, const void *state)
{
    const struct classes_state *st = state;
    const struct bench_host *h = &ctx->host;
    FILE *f = bench_file_open(ctx, "classes.csv");
    if (f) {
        fprintf(f, "class,backend,iterations,measured,median_ns,q1_ns,q3_ns,min_ns,max_ns,"
                   "median_cycles,note\n");
        for (unsigned k = 0; k < st->count; k++) {
            const struct class_result *c = &st->r[k];
            for (unsigned b = 0; b < h->backend_count; b++) {
                const struct bench_stats *s = &c->ns[b];
                if (c->measured[b])
                    fprintf(f, "%s,%s,%u,yes,%.2f,%.2f,%.2f,%.2f,%.2f,%.0f,\"%s\"\n", c->spec->name,
                            h->backend_name[b], c->iterations, s->median, s->q1, s->q3, s->min,
                            s->max, s->median * h->tsc_ghz, c->spec->note ? c->spec->note : "");
                else
                    fprintf(f, "%s,%s,%u,no,,,,,,,\"%s\"\n", c->spec->name, h->backend_name[b],
                            c->iterations, c->why_not[b]);
            }
        }
        bench_file_close(ctx, f);
    }
    f = bench_file_open(ctx, "classes.dat");
    if (f) {
        fprintf(f, "# class");
        for (unsigned b = 0; b < h->backend_count; b++)
            fprintf(f, " %s_median %s_q1 %s_q3", h->backend_name[b], h->backend_name[b],
                    h->backend_name[b]);
        fputc('\n', f);
        for (unsigned k = 0; k < st->count; k++) {
            const struct class_result *c = &st->r[k];
            fprintf(f, "%s", c->spec->name);
            for (unsigned b = 0; b < h->backend_count; b++) {
                /* log scale: floor the baseline-subtracted cost at 0.1 ns for plotting */
                double m = c->ns[b].median < 0.1 ? 0.1 : c->ns[b].median;
                if (c->measured[b])
                    fprintf(f, " %.3f %.3f %.3f", m, c->ns[b].q1 < 0.1 ? 0.1 : c->ns[b].q1,
                            c->ns[b].q3 < 0.1 ? 0.1 : c->ns[b].q3);
                else
                    fprintf(f, " NaN NaN NaN");
            }
            fputc('\n', f);
        }
        bench_file_close(ctx, f);
    }
    char caption[1024];
    bench_caption(ctx, caption, sizeof(caption));
    f = bench_file_open(ctx, "cost_by_class.gp");
    if (f) {
        fprintf(f,
                "set datafile missing 'NaN'\nset style data histograms\n"
                "set style histogram errorbars gap 2 lw 1\nset style fill solid 0.8 border -1\n"
                "set logscale y\nset yrange [0.1:*]\nset grid ytics\n"
                "set ylabel 'cost per instruction (ns, log scale, baseline loop subtracted)'\n"
                "set xlabel 'sensitive-instruction class'\n"
                "set xtics rotate by -30\nset key top left\n"
                "set title \"Cost per sensitive instruction by backend\\n%s\" font ',10'\n",
                caption);
        const char *fmts[] = {"png size 1200,700", "svg size 1200,700"};
        const char *exts[] = {"png", "svg"};
        for (int i = 0; i < 2; i++) {
            fprintf(f, "set terminal %s noenhanced\nset output 'cost_by_class.%s'\nplot ", fmts[i],
                    exts[i]);
            unsigned col = 2;
            for (unsigned b = 0; b < h->backend_count; b++, col += 3)
                fprintf(f, "%s'classes.dat' using %u:%u:%u:xtic(1) title '%s%s'", b ? ", " : "",
                        col, col + 1, col + 2, h->backend_name[b],
                        !h->backend_available[b]                ? " (not measured)"
                        : strstr(h->backend_note[b], "kvm_pvm") ? " (KVM flavor PVM: software)"
                                                                : "");
            fprintf(f, "\n");
        }
        bench_file_close(ctx, f);
        bench_plot(ctx, "cost_by_class.gp");
    }
}

static void classes_write_section(struct bench_ctx *ctx, const void *state, struct bench_doc *d)
{
    const struct classes_state *st = state;
    const struct bench_host *h = &ctx->host;
    bench_doc_heading(d, "Cost per sensitive instruction (h, p, VM-exit cost)");
    bench_doc_figure(d, "cost_by_class.png", "cost by class");
    const char *head[2 + BENCH_MAX_BACKENDS];
    char names[BENCH_MAX_BACKENDS][64];
    head[0] = "class";
    for (unsigned b = 0; b < h->backend_count; b++) {
        snprintf(names[b], sizeof(names[b]), "%s ns median (Q1-Q3)", h->backend_name[b]);
        head[1 + b] = names[b];
    }
    head[1 + h->backend_count] = "note";
    bench_doc_table(d, 2 + h->backend_count, head);
    for (unsigned k = 0; k < st->count; k++) {
        const struct class_result *c = &st->r[k];
        bench_doc_cell(d, "%s", c->spec->name);
        for (unsigned b = 0; b < h->backend_count; b++)
            if (c->measured[b])
                bench_doc_cell(d, "%.1f (%.1f-%.1f)", c->ns[b].median, c->ns[b].q1, c->ns[b].q3);
            else
                bench_doc_cell(d, "not measured: %s", c->why_not[b]);
        bench_doc_cell(d, "%s", c->spec->note ? c->spec->note : "");
    }
    bench_doc_table_end(d);
    bench_doc_para(
        d, "On trap_emulate, the cost of a trapped instruction is h (kernel round trip plus "
           "decode and emulation). Instructions that are sensitive but unprivileged (PUSHF/POPF, "
           "SGDT) do not trap there: their cost is native and their result is wrong, which is "
           "the Popek-Goldberg violation the conformance matrix shows. On vtx the figure is the "
           "cost of the VM exit and its handling. Each figure is the loop with the instruction "
           "minus the same loop without it, divided by the iterations; a median near zero (even "
           "slightly negative) is printed as measured and means the instruction costs less than "
           "the noise of that subtraction: dbt's inline CLI/STI is one store that retires "
           "alongside the loop's own instructions.");

    bench_doc_heading(d, "Adams & Agesen style comparison");
    bench_doc_para(
        d,
        "Adams and Agesen (ASPLOS 2006, \"A Comparison of Software and Hardware Techniques for "
        "x86 Virtualization\") compare native, software-VMM and hardware-VMM cycles per "
        "operation on a Pentium 4 of 2006. Their published figures are not reproduced here (the "
        "paper is not available offline to this build and no number is typed in by hand); this "
        "host's figures in cycles (TSC %.3f GHz) for a software technique (trap_emulate) and the "
        "KVM backend:",
        h->tsc_ghz);
    int t = bench_backend_index(h, "trap_emulate"), v = bench_backend_index(h, "vtx");
    bench_doc_table(d, 3, (const char *[]){"operation", "trap_emulate cycles", "vtx cycles"});
    for (unsigned k = 0; k < st->count; k++) {
        const struct class_result *c = &st->r[k];
        bench_doc_cell(d, "%s", c->spec->name);
        int cols[2] = {t, v};
        for (unsigned i = 0; i < 2; i++)
            if (cols[i] >= 0 && c->measured[cols[i]])
                bench_doc_cell(d, "%.0f", c->ns[cols[i]].median * h->tsc_ghz);
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
        fprintf(f, "}}%s\n", k + 1 < st->count ? "," : "");
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
