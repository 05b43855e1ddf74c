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
    fprintf(f, "{\"n\": %u, \"median\": %.3f, \"q1\": %.3f, \"q3\": %.3f, \"min\": %.3f, \"max\": %.3f}",
            s->n, s->median, s->q1, s->q3, s->min, s->max);
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
        fprintf(f, "peer,measured,iterations,median_ns_per_iteration,min_ns,max_ns,slowdown_vs_native,note\n");
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
            fprintf(f, ", \"available\": %s, \"note\": ", h->backend_available[b] ? "true" : "false");
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
                    fprintf(f, "{\"not_measured\": ");
                    json_str(f, c->why_not[b]);
                    fputc('}', f);
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
                fprintf(f, "{\"not_measured\": ");
                json_str(f, pr->why_not);
                fputc('}', f);
            }
            fprintf(f, "}%s\n", p + 1 < r->peer_count ? "," : "");
        }
        fprintf(f, "  ],\n  \"compute_iterations\": %llu\n}\n",
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

static void write_gnuplot(const struct bench_results *r, const struct bench_options *o)
{
    const struct bench_host *h = &r->host;
    char caption[1024];
    snprintf(caption, sizeof(caption), "%s, %s; median of %u runs, bars from Q1 to Q3; %s",
             h->cpu, h->kernel, r->repetitions, h->date);
    FILE *f = open_out(o, "cost_by_class.gp");
    if (f) {
        fprintf(f, "set datafile missing 'NaN'\nset style data histograms\n"
                   "set style histogram errorbars gap 2 lw 1\nset style fill solid 0.8 border -1\n"
                   "set logscale y\nset yrange [0.1:*]\nset grid ytics\n"
                   "set ylabel 'cost per instruction (ns, log scale, baseline loop subtracted)'\n"
                   "set xlabel 'sensitive-instruction class'\n"
                   "set xtics rotate by -30\nset key top left\n"
                   "set title \"Cost per sensitive instruction by backend\\n%s\" font ',10'\n", caption);
        const char *fmts[] = {"png size 1200,700", "svg size 1200,700"};
        const char *exts[] = {"png", "svg"};
        for (int i = 0; i < 2; i++) {
            fprintf(f, "set terminal %s noenhanced\nset output 'cost_by_class.%s'\nplot ", fmts[i],
                    exts[i]);
            unsigned col = 2, first = 1;
            for (unsigned b = 0; b < BENCH_MAX_BACKENDS && h->backend_name[b]; b++, col += 3) {
                fprintf(f, "%s'classes.dat' using %u:%u:%u:xtic(1) title '%s%s'", first ? "" : ", ",
                        col, col + 1, col + 2, h->backend_name[b],
                        !h->backend_available[b] ? " (not measured)"
                        : strstr(h->backend_note[b], "kvm_pvm") ? " (KVM flavor PVM: software)"
                                                                : "");
                first = 0;
            }
            fprintf(f, "\n");
        }
        fclose(f);
    }
    f = open_out(o, "peers.gp");
    double top = 10;
    double native = r->peers[0].measured ? r->peers[0].ns_per_iter.median : 0;
    for (unsigned p = 0; p < r->peer_count && native > 0; p++)
        if (r->peers[p].measured && r->peers[p].ns_per_iter.median / native * 4 > top)
            top = r->peers[p].ns_per_iter.median / native * 4; /* headroom for the labels */
    if (f) {
        fprintf(f, "set datafile missing 'NaN'\nset style data histograms\n"
                   "set style fill solid 0.8 border -1\nset boxwidth 0.7\nset grid ytics\n"
                   "set logscale y\nset ylabel 'time per loop iteration relative to native "
                   "(log scale)'\nset yrange [0.1:%g]\n"
                   "set xtics rotate by -20\nunset key\n"
                   "set title \"Same compute loop: slowdown vs native (1.0)\\n%s\" font ',10'\n",
                top, caption);
        fprintf(f, "set terminal png size 1100,650 noenhanced\nset output 'peers.png'\n"
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
          "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:"
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
    P("%s![cost by class](cost_by_class.png)%s", html ? "<p><img src='cost_by_class.png' alt='" : "",
      html ? "cost by class'></p>\n" : "\n\n");
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
      "virtualization, not VT-x/AMD-V.%s", pp, ppe);
    P("%sBreak-even m* = B / (h - p)%s", h2, h2e);
    unsigned dbt = 1;
    P("%sNot measured: the dbt backend is %s (%s). p (translated cost) and B (translation cost) come from the dbt "
      "backend; without them neither the predicted break-even m* = B/(h-p) nor the observed "
      "crossover, nor the footprint x repetitions map, can be computed honestly, so they are not "
      "shown. h per class is in the table above.%s",
      pp, h->backend_available[dbt] ? "available but this harness does not measure it yet"
                                    : "unavailable",
      h->backend_note[dbt], ppe);
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
      "(%.0f cycles natively).%s", html ? "</table>\n" : "\n", pp,
      h->syscall_ns.median * h->tsc_ghz, ppe);
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
            P(html ? "<tr><td>%s</td><td>%llu</td><td>%.3f</td><td>%.3f-%.3f</td><td>%.2fx</td></tr>\n"
                   : "| %s | %llu | %.3f | %.3f-%.3f | %.2fx |\n",
              pr->name, (unsigned long long)pr->iterations, pr->ns_per_iter.median, pr->ns_per_iter.min, pr->ns_per_iter.max,
              native > 0 ? pr->ns_per_iter.median / native : 0);
        else
            P(html ? "<tr><td>%s</td><td colspan=4>not measured: %s</td></tr>\n"
                   : "| %s | | not measured: %s | | |\n", pr->name, pr->why_not);
    }
    P("%s", html ? "</table>\n" : "\n");
    P("%sThe loop (%zu bytes of machine code, no memory access) runs as a Linux program natively, "
      "under qemu-x86_64 (TCG) and valgrind --tool=none (timed inside the program with "
      "CLOCK_MONOTONIC, so tool start-up is excluded), and as raw guest code on each available "
      "backend (timed between two host-timestamped marks). Iteration counts are calibrated per "
      "run so that slow configurations stay within the time budget; the comparison is per "
      "iteration. Files: classes.csv, peers.csv, results.json, *.dat, *.gp.%s",
      pp, bench_compute_loop_size, ppe);
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
             "cd '%s' && gnuplot cost_by_class.gp 2>gnuplot.log && gnuplot peers.gp 2>>gnuplot.log",
             o->out_dir);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "bench: gnuplot failed (see %s/gnuplot.log); data and tables are written\n",
                o->out_dir);
    return rc == 0 ? 0 : -1;
}
