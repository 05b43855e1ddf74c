/* bench_report.c - write report/out: CSV + JSON behind every table and figure, gnuplot
 * scripts rendered to PNG and SVG, index.md and index.html. Nothing is typed in by hand: every
 * number comes from struct bench_results; what was not measured says why. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"

static FILE *open_out(const struct bench_options *o, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", o->out_dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_stats(FILE *f, const struct bench_stats *s)
{
    fprintf(
        f,
        "{\"n\": %u, \"median\": %.3f, \"q1\": %.3f, \"q3\": %.3f, \"min\": %.3f, \"max\": %.3f}",
        s->n, s->median, s->q1, s->q3, s->min, s->max);
}

/* {"not_measured": "why"}: a value that could not be measured, with the reason */
static void json_not_measured(FILE *f, const char *why)
{
    fprintf(f, "{\"not_measured\": ");
    json_str(f, why);
    fputc('}', f);
}

static void write_csvs(const struct bench_results *r, const struct bench_options *o)
{
    const struct bench_host *h = &r->host;
    FILE *f = open_out(o, "classes.csv");
    if (f) {
        fprintf(f, "class,backend,iterations,measured,median_ns,q1_ns,q3_ns,min_ns,max_ns,"
                   "median_cycles,note\n");
        for (unsigned k = 0; k < r->class_count; k++) {
            const struct bench_class_result *c = &r->classes[k];
            for (unsigned b = 0; b < BENCH_MAX_BACKENDS && h->backend_name[b]; b++) {
                const struct bench_stats *s = &c->ns[b];
                if (c->measured[b])
                    fprintf(f, "%s,%s,%u,yes,%.2f,%.2f,%.2f,%.2f,%.2f,%.0f,\"%s\"\n", c->class_name,
                            h->backend_name[b], c->iterations, s->median, s->q1, s->q3, s->min,
                            s->max, s->median * h->tsc_ghz, c->note);
                else
                    fprintf(f, "%s,%s,%u,no,,,,,,,\"%s\"\n", c->class_name, h->backend_name[b],
                            c->iterations, c->why_not[b]);
            }
        }
        fclose(f);
    }
    f = open_out(o, "peers.csv");
    if (f) {
        fprintf(f, "peer,measured,iterations,median_ns_per_iteration,min_ns,max_ns,slowdown_vs_"
                   "native,note\n");
        double native = r->peers[0].measured ? r->peers[0].ns_per_iter.median : 0;
        for (unsigned p = 0; p < r->peer_count; p++) {
            const struct bench_peer_result *pr = &r->peers[p];
            if (pr->measured)
                fprintf(f, "\"%s\",yes,%llu,%.4f,%.4f,%.4f,%.3f,\n", pr->name,
                        (unsigned long long)pr->iterations, pr->ns_per_iter.median,
                        pr->ns_per_iter.min, pr->ns_per_iter.max,
                        native > 0 ? pr->ns_per_iter.median / native : 0);
            else
                fprintf(f, "\"%s\",no,,,,,,\"%s\"\n", pr->name, pr->why_not);
        }
        fclose(f);
    }
    f = open_out(o, "results.json");
    if (f) {
        fprintf(f, "{\n  \"host\": {\"cpu\": ");
        json_str(f, h->cpu);
        fprintf(f, ", \"kernel\": ");
        json_str(f, h->kernel);
        fprintf(f, ", \"date\": ");
        json_str(f, h->date);
        fprintf(f, ", \"tsc_ghz\": %.4f, \"repetitions\": %u,\n    \"signal_round_trip_ns\": ",
                h->tsc_ghz, r->repetitions);
        json_stats(f, &h->signal_round_trip_ns);
        fprintf(f, ", \"getppid_ns\": ");
        json_stats(f, &h->syscall_ns);
        fprintf(f, ",\n    \"backends\": [");
        for (unsigned b = 0; b < BENCH_MAX_BACKENDS && h->backend_name[b]; b++) {
            fprintf(f, "%s{\"name\": ", b ? ", " : "");
            json_str(f, h->backend_name[b]);
            fprintf(f,
                    ", \"available\": %s, \"note\": ", h->backend_available[b] ? "true" : "false");
            json_str(f, h->backend_note[b]);
            fputc('}', f);
        }
        fprintf(f, "]},\n  \"classes\": [\n");
        for (unsigned k = 0; k < r->class_count; k++) {
            const struct bench_class_result *c = &r->classes[k];
            fprintf(f, "    {\"class\": ");
            json_str(f, c->class_name);
            fprintf(f, ", \"iterations\": %u, \"note\": ", c->iterations);
            json_str(f, c->note);
            fprintf(f, ", \"per_backend_ns\": {");
            for (unsigned b = 0; b < BENCH_MAX_BACKENDS && h->backend_name[b]; b++) {
                fprintf(f, "%s", b ? ", " : "");
                json_str(f, h->backend_name[b]);
                fprintf(f, ": ");
                if (c->measured[b])
                    json_stats(f, &c->ns[b]);
                else {
                    json_not_measured(f, c->why_not[b]);
                }
            }
            fprintf(f, "}}%s\n", k + 1 < r->class_count ? "," : "");
        }
        fprintf(f, "  ],\n  \"peers\": [\n");
        for (unsigned p = 0; p < r->peer_count; p++) {
            const struct bench_peer_result *pr = &r->peers[p];
            fprintf(f, "    {\"peer\": ");
            json_str(f, pr->name);
            fprintf(f, ", \"iterations\": %llu, \"ns_per_iteration\": ",
                    (unsigned long long)pr->iterations);
            if (pr->measured)
                json_stats(f, &pr->ns_per_iter);
            else {
                json_not_measured(f, pr->why_not);
            }
            fprintf(f, "}%s\n", p + 1 < r->peer_count ? "," : "");
        }
        fprintf(f, "  ],\n  \"translation\": ");
        const struct bench_translation *tr = &r->translation;
        if (tr->measured) {
            fputc('[', f);
            for (unsigned k = 0; k < BENCH_B_CASES; k++) {
                const struct bench_b_case *bc = &tr->cases[k];
                fprintf(f, "%s{\"case\": ", k ? ", " : "");
                json_str(f, bc->name);
                fprintf(f, ", \"blocks\": %u, \"instructions_per_block\": %u, \"ns_per_insn\": ",
                        bc->blocks, bc->insns_per_block);
                json_stats(f, &bc->ns_per_insn);
                fprintf(f, ", \"ns_per_block\": ");
                json_stats(f, &bc->ns_per_block);
                fprintf(f, ", \"decode_full_ns_per_insn\": ");
                json_stats(f, &bc->decode_ns_per_insn);
                fputc('}', f);
            }
            fputc(']', f);
        } else {
            json_not_measured(f, tr->why_not);
        }
        fprintf(f, ",\n  \"compute_iterations\": %llu\n}\n",
                (unsigned long long)r->compute_iterations);
        fclose(f);
    }
}

/* Data files gnuplot reads (whitespace separated, "NaN" where not measured). */
static void write_plot_data(const struct bench_results *r, const struct bench_options *o)
{
    const struct bench_host *h = &r->host;
    FILE *f = open_out(o, "classes.dat");
    if (f) {
        fprintf(f, "# class");
        for (unsigned b = 0; b < BENCH_MAX_BACKENDS && h->backend_name[b]; b++)
            fprintf(f, " %s_median %s_q1 %s_q3", h->backend_name[b], h->backend_name[b],
                    h->backend_name[b]);
        fputc('\n', f);
        for (unsigned k = 0; k < r->class_count; k++) {
            const struct bench_class_result *c = &r->classes[k];
            fprintf(f, "%s", c->class_name);
            for (unsigned b = 0; b < BENCH_MAX_BACKENDS && h->backend_name[b]; b++) {
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
        fclose(f);
    }
    f = open_out(o, "peers.dat");
    if (f) {
        double native = r->peers[0].measured ? r->peers[0].ns_per_iter.median : 0;
        for (unsigned p = 0; p < r->peer_count; p++) {
            const struct bench_peer_result *pr = &r->peers[p];
            if (pr->measured && native > 0)
                fprintf(f, "\"%s\" %.3f\n", pr->name, pr->ns_per_iter.median / native);
            /* seconds.* hold ns per iteration (see bench_measure_peers) */
            else
                fprintf(f, "\"%s (not measured)\" NaN\n", pr->name);
        }
        fclose(f);
    }
}

static void write_breakeven_files(const struct bench_results *r, const struct bench_options *o,
                                  const char *caption)
{
    FILE *f = open_out(o, "breakeven.csv");
    if (f) {
        fprintf(f, "class,h_ns,p_ns,B_ns,predicted_m,observed_m,m,trap_total_ns,dbt_total_ns\n");
        for (unsigned k = 0; k < r->breakeven_count; k++) {
            const struct bench_breakeven *b = &r->breakeven[k];
            if (!b->measured) {
                fprintf(f, "%s,,,,,,,,\"not measured: %s\"\n", b->class_name, b->why_not);
                continue;
            }
            for (unsigned i = 0; i < b->sweep_count; i++)
                fprintf(f, "%s,%.1f,%.1f,%.1f,%.3f,%.0f,%u,%.0f,%.0f\n", b->class_name, b->h_ns,
                        b->p_ns, b->b_ns, b->predicted, b->observed, b->m[i], b->trap_ns[i],
                        b->dbt_ns[i]);
        }
        fclose(f);
    }
    f = open_out(o, "breakeven.dat");
    FILE *g = open_out(o, "breakeven.gp");
    if (!f || !g) {
        if (f)
            fclose(f);
        if (g)
            fclose(g);
        return;
    }
    unsigned shown = 0, max_m = 1;
    for (unsigned k = 0; k < r->breakeven_count; k++) {
        const struct bench_breakeven *b = &r->breakeven[k];
        if (!b->measured)
            continue;
        for (unsigned i = 0; i < b->sweep_count; i++)
            max_m = b->m[i] > max_m ? b->m[i] : max_m;
        fprintf(f, "# %s\n", b->class_name);
        for (unsigned i = 0; i < b->sweep_count; i++)
            fprintf(f, "%u %.3f %.3f\n", b->m[i], b->trap_ns[i] / 1000, b->dbt_ns[i] / 1000);
        fprintf(f, "\n\n");
        shown++;
    }
    fclose(f);
    fprintf(g,
            "set logscale xy\nset grid\nset key outside right top vertical Left reverse "
            "font ',9'\nset xlabel 'm: executions of the block holding the instruction'\n"
            "set ylabel 'total time (us, log scale, translation included for dbt)'\n"
            "set xrange [1:%u]\n"
            "set title \"Trap-and-emulate (solid) vs binary translation (dashed): total time "
            "vs m\\n%s\" font ',10'\n",
            max_m, caption);
    /* pngcairo: the libgd png terminal draws every dash type solid */
    const char *fmts[] = {"pngcairo size 1400,800 noenhanced", "svg size 1400,800 noenhanced"};
    const char *exts[] = {"png", "svg"};
    for (int t = 0; t < 2; t++) {
        fprintf(g, "set terminal %s\nset output 'breakeven.%s'\n", fmts[t], exts[t]);
        unsigned idx = 0, first = 1;
        fprintf(g, "plot ");
        for (unsigned k = 0; k < r->breakeven_count; k++) {
            const struct bench_breakeven *b = &r->breakeven[k];
            if (!b->measured)
                continue;
            fprintf(g,
                    "%s'breakeven.dat' index %u using 1:2 with linespoints lt %u dt 1 "
                    "title '%s trap (h=%.0f ns)', '' index %u using 1:3 with linespoints lt %u "
                    "dt 2 title '%s dbt (p=%.1f ns, B=%.0f ns; m* pred %.2f, obs %.0f)'",
                    first ? "" : ", ", idx, idx + 1, b->class_name, b->h_ns, idx, idx + 1,
                    b->class_name, b->p_ns, b->b_ns, b->predicted, b->observed);
            first = 0;
            idx++;
        }
        fprintf(g, "\n");
    }
    fclose(g);
    (void)shown;
    const struct bench_footprint *fp = &r->footprint;
    f = open_out(o, "footprint.csv");
    if (f) {
        fprintf(f, "blocks,repetitions,trap_ns,dbt_ns,winner\n");
        if (!fp->measured)
            fprintf(f, ",,,,\"not measured: %s\"\n", fp->why_not);
        else
            for (unsigned i = 0; i < BENCH_FOOT_N; i++)
                for (unsigned j = 0; j < BENCH_FOOT_R; j++)
                    fprintf(f, "%u,%u,%.0f,%.0f,%s\n", fp->blocks[i], fp->reps[j],
                            fp->trap_ns[i][j], fp->dbt_ns[i][j],
                            fp->dbt_ns[i][j] < fp->trap_ns[i][j] ? "dbt" : "trap_emulate");
        fclose(f);
    }
    if (!fp->measured)
        return;
    f = open_out(o, "footprint.dat");
    g = open_out(o, "footprint.gp");
    if (!f || !g) {
        if (f)
            fclose(f);
        if (g)
            fclose(g);
        return;
    }
    for (unsigned i = 0; i < BENCH_FOOT_N; i++)
        for (unsigned j = 0; j < BENCH_FOOT_R; j++)
            fprintf(f, "%u %u %.3f\n", j, i, fp->trap_ns[i][j] / fp->dbt_ns[i][j]);
    fclose(f);
    fprintf(g,
            "set title \"Which technique wins: trap time / dbt time (>1: dbt wins)\\n"
            "one CLI per block; %s\" font ',10'\n"
            "set xlabel 'repetitions of every block'\nset ylabel 'code footprint (distinct "
            "blocks)'\nset cblabel 'trap_emulate time / dbt time (log scale)'\n"
            "set logscale cb\nset palette defined (0 '#b2182b', 1 '#f7f7f7', 2 '#2166ac')\n"
            "set cbrange [0.1:10]\nset xrange [-0.5:%d.5]\nset yrange [-0.5:%d.5]\n",
            caption, BENCH_FOOT_R - 1, BENCH_FOOT_N - 1);
    fprintf(g, "set xtics (");
    for (unsigned j = 0; j < BENCH_FOOT_R; j++)
        fprintf(g, "%s'%u' %u", j ? ", " : "", fp->reps[j], j);
    fprintf(g, ")\nset ytics (");
    for (unsigned i = 0; i < BENCH_FOOT_N; i++)
        fprintf(g, "%s'%u' %u", i ? ", " : "", fp->blocks[i], i);
    fprintf(g, ")\n");
    for (int t = 0; t < 2; t++) {
        fprintf(g, "set terminal %s\nset output 'footprint.%s'\n", fmts[t], exts[t]);
        fprintf(g, "plot 'footprint.dat' using 1:2:3 with image notitle, '' using 1:2:"
                   "(sprintf('%%.2f', $3)) with labels notitle\n");
    }
    fclose(g);
}

static void write_gnuplot(const struct bench_results *r, const struct bench_options *o)
{
    const struct bench_host *h = &r->host;
    char caption[1024];
    snprintf(caption, sizeof(caption), "%s, %s; median of %u runs, bars from Q1 to Q3; %s", h->cpu,
             h->kernel, r->repetitions, h->date);
    FILE *f = open_out(o, "cost_by_class.gp");
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
            unsigned col = 2, first = 1;
            for (unsigned b = 0; b < BENCH_MAX_BACKENDS && h->backend_name[b]; b++, col += 3) {
                fprintf(f, "%s'classes.dat' using %u:%u:%u:xtic(1) title '%s%s'", first ? "" : ", ",
                        col, col + 1, col + 2, h->backend_name[b],
                        !h->backend_available[b]                ? " (not measured)"
                        : strstr(h->backend_note[b], "kvm_pvm") ? " (KVM flavor PVM: software)"
                                                                : "");
                first = 0;
            }
            fprintf(f, "\n");
        }
        fclose(f);
    }
    write_breakeven_files(r, o, caption);
    f = open_out(o, "peers.gp");
    double top = 10;
    double native = r->peers[0].measured ? r->peers[0].ns_per_iter.median : 0;
    for (unsigned p = 0; p < r->peer_count && native > 0; p++)
        if (r->peers[p].measured && r->peers[p].ns_per_iter.median / native * 4 > top)
            top = r->peers[p].ns_per_iter.median / native * 4; /* headroom for the labels */
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
        fclose(f);
    }
}

static void write_markdown(const struct bench_results *r, const struct bench_options *o, FILE *f,
                           bool html)
{
    const struct bench_host *h = &r->host;
#define P(...) fprintf(f, __VA_ARGS__)
    if (html)
        P("<!doctype html><html><head><meta charset='utf-8'><title>vmlab report</title>"
          "<style>body{font-family:sans-serif;max-width:1100px;margin:2em "
          "auto}table{border-collapse:"
          "collapse}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}td:first-child,"
          "th:first-child{text-align:left}img{max-width:100%%}</style></head><body>\n");
    const char *h1 = html ? "<h1>" : "# ", *h1e = html ? "</h1>\n" : "\n\n";
    const char *h2 = html ? "<h2>" : "## ", *h2e = html ? "</h2>\n" : "\n\n";
    const char *pp = html ? "<p>" : "", *ppe = html ? "</p>\n" : "\n\n";
    P("%svmlab: three virtualization techniques side by side%s", h1, h1e);
    P("%sHost: %s, %s. Date: %s. TSC: %.3f GHz (measured against CLOCK_MONOTONIC). "
      "Repetitions: %u per measurement; medians with Q1-Q3 and min-max. Generated by "
      "`vmlab bench%s`. Method: docs/REPORT.md.%s",
      pp, h->cpu, h->kernel, h->date, h->tsc_ghz, r->repetitions, o->quick ? " --quick" : "", ppe);
    P("%sBackends on this host%s", h2, h2e);
    for (unsigned b = 0; b < BENCH_MAX_BACKENDS && h->backend_name[b]; b++) {
        char note[512];
        snprintf(note, sizeof(note), "%s", h->backend_note[b]);
        for (char *c = note; *c; c++)
            if (*c == '\n')
                *c = ';';
        P("%s**%s**: %s%s%s", html ? "<p>" : "- ", h->backend_name[b],
          h->backend_available[b] ? "available. " : "not measured: unavailable: ", note,
          html ? "</p>\n" : "\n");
    }
    P("%s", html ? "" : "\n");
    P("%sKernel floor%s", h2, h2e);
    P("%sAn empty signal round trip on this host (CLI at CPL 3 -> #GP -> SIGSEGV -> handler that "
      "only skips it -> sigreturn): median %.0f ns (Q1 %.0f, Q3 %.0f). A getppid system call: "
      "median %.0f ns. Every trap_emulate trap pays at least the first.%s",
      pp, h->signal_round_trip_ns.median, h->signal_round_trip_ns.q1, h->signal_round_trip_ns.q3,
      h->syscall_ns.median, ppe);
    P("%sCost per sensitive instruction (h, p, VM-exit cost)%s", h2, h2e);
    P("%s![cost by class](cost_by_class.png)%s",
      html ? "<p><img src='cost_by_class.png' alt='" : "", html ? "cost by class'></p>\n" : "\n\n");
    if (html)
        P("<table><tr><th>class</th>");
    else
        P("| class |");
    for (unsigned b = 0; b < BENCH_MAX_BACKENDS && h->backend_name[b]; b++)
        P(html ? "<th>%s ns (Q1-Q3)</th>" : " %s ns median (Q1-Q3) |", h->backend_name[b]);
    P(html ? "<th>note</th></tr>\n" : " note |\n|---|");
    if (!html) {
        for (unsigned b = 0; b < BENCH_MAX_BACKENDS && h->backend_name[b]; b++)
            P("---|");
        P("---|\n");
    }
    for (unsigned k = 0; k < r->class_count; k++) {
        const struct bench_class_result *c = &r->classes[k];
        P(html ? "<tr><td>%s</td>" : "| %s |", c->class_name);
        for (unsigned b = 0; b < BENCH_MAX_BACKENDS && h->backend_name[b]; b++) {
            if (c->measured[b])
                P(html ? "<td>%.1f (%.1f-%.1f)</td>" : " %.1f (%.1f-%.1f) |", c->ns[b].median,
                  c->ns[b].q1, c->ns[b].q3);
            else
                P(html ? "<td>not measured</td>" : " not measured |");
        }
        P(html ? "<td>%s</td></tr>\n" : " %s |\n", c->note);
    }
    P("%s", html ? "</table>\n" : "\n");
    P("%sOn trap_emulate, the cost of a trapped instruction is h (kernel round trip plus decode "
      "and emulation). Instructions that are sensitive but unprivileged (PUSHF/POPF, SGDT) do not "
      "trap there: their cost is native and their result is wrong, which is the Popek-Goldberg "
      "violation the conformance matrix shows. On vtx the figure is the cost of the VM exit and "
      "its handling; on this host vtx's KVM may be PVM (see above), which is software "
      "virtualization, not VT-x/AMD-V. Each figure is the loop with the instruction minus the "
      "same loop without it, divided by the iterations; a median near zero (even slightly "
      "negative) is printed as measured and means the instruction costs less than the noise of "
      "that subtraction: dbt's inline CLI/STI is one store that retires alongside the loop's "
      "own instructions.%s",
      pp, ppe);
    P("%sBreak-even m* = B / (h - p)%s", h2, h2e);
    const struct bench_translation *tr = &r->translation;
    if (!tr->measured) {
        P("%sNot measured: %s. p (translated cost) and B (translation cost) come from the dbt "
          "backend; without them neither m* nor the footprint map can be computed honestly.%s",
          pp, tr->why_not, ppe);
    } else {
        P("%sTranslation cost B, from dbt's own statistics (TSC-timed) on guests whose every "
          "block is new, beside a bare ZydisDecoderDecodeFull of the same bytes in the same run "
          "(the floor: the translator must at least decode). The translator decodes operands "
          "only where it needs them (sensitive instructions, MOV/PUSH/POP), copies innocuous "
          "bytes and writes the block into the cache in one copy; what stays above the floor is "
          "mostly per block (the exit stub, metadata, and the store into freshly written code, "
          "which this CPU makes expensive), so short blocks weigh it most. The break-even "
          "predictions below use the cold figure: each sweep point is a fresh process.%s",
          pp, ppe);
        P(html ? "<table><tr><th>case</th><th>blocks x instructions</th><th>B ns per guest "
                 "instruction (Q1-Q3)</th><th>B ns per block</th><th>bare decode ns per "
                 "instruction</th><th>B / decode</th></tr>\n"
               : "| case | blocks x instructions | B ns per guest instruction (Q1-Q3) | B ns per "
                 "block | bare decode ns per instruction | B / decode |\n"
                 "|---|---|---|---|---|---|\n");
        for (unsigned k = 0; k < BENCH_B_CASES; k++) {
            const struct bench_b_case *bc = &tr->cases[k];
            double decode = bc->decode_ns_per_insn.median;
            P(html ? "<tr><td>%s (%s)</td><td>%u x %u</td><td>%.0f (%.0f-%.0f)</td><td>%.0f</td>"
                     "<td>%.0f</td><td>%.2f</td></tr>\n"
                   : "| %s (%s) | %u x %u | %.0f (%.0f-%.0f) | %.0f | %.0f | %.2f |\n",
              bc->name, bc->description, bc->blocks, bc->insns_per_block, bc->ns_per_insn.median,
              bc->ns_per_insn.q1, bc->ns_per_insn.q3, bc->ns_per_block.median, decode,
              decode > 0 ? bc->ns_per_insn.median / decode : 0);
        }
        P("%s", html ? "</table>\n" : "\n");
        P("%s![break-even](breakeven.png)%s", html ? "<p><img src='breakeven.png' alt='" : "",
          html ? "break-even'></p>\n" : "\n\n");
        P(html ? "<table><tr><th>class</th><th>h (ns)</th><th>p (ns)</th><th>B for the block "
                 "(ns)</th><th>predicted m*</th><th>observed crossover m (medians)</th>"
                 "<th>per-repetition crossover (min-max)</th></tr>\n"
               : "| class | h (ns) | p (ns) | B for the block (ns) | predicted m* | observed "
                 "crossover m (medians) | per-repetition crossover (min-max) |\n"
                 "|---|---|---|---|---|---|---|\n");
        for (unsigned k = 0; k < r->breakeven_count; k++) {
            const struct bench_breakeven *b = &r->breakeven[k];
            char spread[64];
            if (b->observed_max >= 1e9)
                snprintf(spread, sizeof(spread), "%.0f-none", b->observed_min);
            else
                snprintf(spread, sizeof(spread), "%.0f-%.0f", b->observed_min, b->observed_max);
            if (!b->measured)
                P(html ? "<tr><td>%s</td><td colspan=6>not measured: %s</td></tr>\n"
                       : "| %s | not measured: %s | | | | | |\n",
                  b->class_name, b->why_not);
            else if (b->observed)
                P(html ? "<tr><td>%s</td><td>%.0f</td><td>%.1f</td><td>%.0f</td><td>%.2f</td>"
                         "<td>%.0f</td><td>%s</td></tr>\n"
                       : "| %s | %.0f | %.1f | %.0f | %.2f | %.0f | %s |\n",
                  b->class_name, b->h_ns, b->p_ns, b->b_ns, b->predicted, b->observed, spread);
            else
                P(html ? "<tr><td>%s</td><td>%.0f</td><td>%.1f</td><td>%.0f</td><td>%.2f</td>"
                         "<td>none up to m = %u</td><td>%s</td></tr>\n"
                       : "| %s | %.0f | %.1f | %.0f | %.2f | none up to m = %u | %s |\n",
                  b->class_name, b->h_ns, b->p_ns, b->b_ns, b->predicted,
                  b->sweep_count ? b->m[b->sweep_count - 1] : 0, spread);
        }
        P("%s%sThe sweep runs, for each m, a fresh guest in which the block holding the "
          "instruction executes m times, on both backends, and compares total times (dbt "
          "includes translating every block of that guest). Prediction and observation differ "
          "because the formula counts only the one block's translation and the per-execution "
          "difference h - p, while a real run also translates the surrounding blocks (setup, "
          "marks, exit), pays dbt's dispatcher whenever a block exit is not chained (callouts, "
          "indirect branches, STI and POPF exits), and the "
          "sweep is discrete: the observed value is the first m of the sweep at which dbt is "
          "faster.%s",
          html ? "</table>\n" : "\n", pp, ppe);
        const struct bench_footprint *fp = &r->footprint;
        P("%sBeyond the formula: footprint x repetitions%s", h2, h2e);
        if (!fp->measured)
            P("%sNot measured: %s%s", pp, fp->why_not, ppe);
        else
            P("%sA guest of N distinct blocks, each holding one CLI, the whole chain executed r "
              "times. DBT pays B for every block, including its innocuous instructions, before "
              "the first execution; trap-and-emulate pays h on every execution. Cells show "
              "trap time / dbt time (above 1: dbt wins). Data: footprint.csv.%s%s![footprint]"
              "(footprint.png)%s",
              pp, ppe, html ? "<p><img src='footprint.png' alt='" : "",
              html ? "footprint'></p>\n" : "\n\n");
    }
    P("%sAdams & Agesen style comparison%s", h2, h2e);
    P("%sAdams and Agesen (ASPLOS 2006, \"A Comparison of Software and Hardware Techniques for "
      "x86 Virtualization\") compare native, software-VMM and hardware-VMM cycles per operation "
      "on a Pentium 4 of 2006. Their published figures are not reproduced here (the paper is not "
      "available offline to this build and no number is typed in by hand); this host's figures "
      "in cycles (TSC %.3f GHz) for a software technique (trap_emulate) and the KVM backend:%s",
      pp, h->tsc_ghz, ppe);
    P(html ? "<table><tr><th>operation</th><th>trap_emulate cycles</th><th>vtx cycles</th></tr>\n"
           : "| operation | trap_emulate cycles | vtx cycles |\n|---|---|---|\n");
    for (unsigned k = 0; k < r->class_count; k++) {
        const struct bench_class_result *c = &r->classes[k];
        P(html ? "<tr><td>%s</td>" : "| %s |", c->class_name);
        for (unsigned b = 0; b < 3; b += 2) {
            if (c->measured[b])
                P(html ? "<td>%.0f</td>" : " %.0f |", c->ns[b].median * h->tsc_ghz);
            else
                P(html ? "<td>not measured</td>" : " not measured |");
        }
        P(html ? "</tr>\n" : "\n");
    }
    P("%s%sThe syscall row of the original table corresponds here to the getppid figure above "
      "(%.0f cycles natively).%s",
      html ? "</table>\n" : "\n", pp, h->syscall_ns.median * h->tsc_ghz, ppe);
    P("%sThe same compute code: native, qemu-user, valgrind, guests%s", h2, h2e);
    P("%s![peers](peers.png)%s", html ? "<p><img src='peers.png' alt='" : "",
      html ? "peers'></p>\n" : "\n\n");
    P(html ? "<table><tr><th>run</th><th>iterations</th><th>ns per iteration (median)</th>"
             "<th>min-max</th><th>vs native</th></tr>\n"
           : "| run | iterations | ns per iteration (median) | min-max | vs native |\n"
             "|---|---|---|---|---|\n");
    double native = r->peers[0].measured ? r->peers[0].ns_per_iter.median : 0;
    for (unsigned p = 0; p < r->peer_count; p++) {
        const struct bench_peer_result *pr = &r->peers[p];
        if (pr->measured)
            P(html ? "<tr><td>%s</td><td>%llu</td><td>%.3f</td><td>%.3f-%.3f</td><td>%.2fx</td></"
                     "tr>\n"
                   : "| %s | %llu | %.3f | %.3f-%.3f | %.2fx |\n",
              pr->name, (unsigned long long)pr->iterations, pr->ns_per_iter.median,
              pr->ns_per_iter.min, pr->ns_per_iter.max,
              native > 0 ? pr->ns_per_iter.median / native : 0);
        else
            P(html ? "<tr><td>%s</td><td colspan=4>not measured: %s</td></tr>\n"
                   : "| %s | | not measured: %s | | |\n",
              pr->name, pr->why_not);
    }
    P("%s", html ? "</table>\n" : "\n");
    P("%sThe workload (bench/compute_kernel.c: per iteration, a recursive quicksort of 64 "
      "words and a table-driven CRC-32 of 256 bytes, on xorshift data) is one flat block of %lu "
      "bytes of position-independent machine code. The same bytes run as a Linux program "
      "natively, under qemu-x86_64 (TCG) and valgrind --tool=none (timed inside the program "
      "with CLOCK_MONOTONIC, so tool start-up is excluded), and as raw guest code on each "
      "available backend (timed between two host-timestamped marks). Every configuration's "
      "checksum after 100 iterations must equal the native one, or it is reported as a wrong "
      "result instead of a time. Iteration counts are calibrated per run so that slow "
      "configurations stay within the time budget; the comparison is per iteration. Files: "
      "classes.csv, peers.csv, results.json, *.dat, *.gp.%s",
      pp, bench_compute_kernel_size, ppe);
    if (html)
        P("</body></html>\n");
#undef P
}

int bench_write_report(const struct bench_results *r, const struct bench_options *o)
{
    mkdir(o->out_dir, 0755);
    write_csvs(r, o);
    write_plot_data(r, o);
    write_gnuplot(r, o);
    FILE *md = open_out(o, "index.md"), *html = open_out(o, "index.html");
    if (md)
        write_markdown(r, o, md, false);
    if (html)
        write_markdown(r, o, html, true);
    if (md)
        fclose(md);
    if (html)
        fclose(html);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && gnuplot cost_by_class.gp 2>gnuplot.log && gnuplot peers.gp 2>>gnuplot.log"
             " && gnuplot breakeven.gp 2>>gnuplot.log && { [ ! -f footprint.gp ] || "
             "gnuplot footprint.gp 2>>gnuplot.log; }",
             o->out_dir);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "bench: gnuplot failed (see %s/gnuplot.log); data and tables are written\n",
                o->out_dir);
    return rc == 0 ? 0 : -1;
}
