/* cmd_conformance.c - `vmlab conformance`: every guest test on every backend, as a matrix.
 *
 * Rows: test, backend, expected (pass / xfail / skip, from the guest's .vmlab_expect records
 * resolved against this host), actual ending, verdict, and the reason or message. An
 * unexpected pass is reported as loudly as an unexpected failure; the exit status is 1 if
 * there was either.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "output.h"
#include "verdict.h"

enum format { FORMAT_TEXT, FORMAT_CSV, FORMAT_JSON };

struct row {
    char test[64];
    const char *backend;
    struct verdict v;
};

/* Default guest directory: <build>/guest_tests next to <build>/tools/vmlab/vmlab. */
static int default_guest_dir(char *buf, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    char *dir = dirname(exe); /* build/tools/vmlab */
    snprintf(buf, size, "%s/../../guest_tests", dir);
    return 0;
}

static int load_manifest(const char *dir, char ***paths, unsigned *count)
{
    char file[PATH_MAX + 16];
    snprintf(file, sizeof(file), "%s/manifest.txt", dir);
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr,
                "vmlab conformance: cannot read %s (build the guest tests, or pass "
                "--guests DIR or IMAGE files)\n",
                file);
        return -1;
    }
    char line[PATH_MAX];
    unsigned cap = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 64;
            *paths = realloc(*paths, cap * sizeof(char *));
        }
        char full[PATH_MAX * 2];
        if (line[0] == '/')
            snprintf(full, sizeof(full), "%s", line);
        else
            snprintf(full, sizeof(full), "%s/%s", dir, line);
        (*paths)[(*count)++] = strdup(full);
    }
    fclose(f);
    return 0;
}

static void test_name(const char *path, char *buf, size_t size)
{
    const char *base = strrchr(path, '/');
    snprintf(buf, size, "%s", base ? base + 1 : path);
    char *dot = strstr(buf, ".elf");
    if (dot)
        *dot = 0;
}

static void print_rows(const struct row *rows, unsigned n, enum format fmt, FILE *out)
{
    if (fmt == FORMAT_CSV) {
        fprintf(out, "test,backend,expected,actual,verdict,detail\n");
        for (unsigned i = 0; i < n; i++) {
            const struct row *r = &rows[i];
            fprintf(out, "%s,%s,", r->test, r->backend);
            out_csv_field(out, r->v.expected);
            fputc(',', out);
            out_csv_field(out, r->v.actual);
            fprintf(out, ",%s,", verdict_name(r->v.kind));
            out_csv_field(out, r->v.detail);
            fputc('\n', out);
        }
        return;
    }
    if (fmt == FORMAT_JSON) {
        fprintf(out, "[\n");
        for (unsigned i = 0; i < n; i++) {
            const struct row *r = &rows[i];
            fprintf(out, "  {\"test\": ");
            out_json_string(out, r->test);
            fprintf(out, ", \"backend\": ");
            out_json_string(out, r->backend);
            fprintf(out, ", \"expected\": ");
            out_json_string(out, r->v.expected);
            fprintf(out, ", \"actual\": ");
            out_json_string(out, r->v.actual);
            fprintf(out, ", \"verdict\": ");
            out_json_string(out, verdict_name(r->v.kind));
            fprintf(out, ", \"detail\": ");
            out_json_string(out, r->v.detail);
            fprintf(out, "}%s\n", i + 1 < n ? "," : "");
        }
        fprintf(out, "]\n");
        return;
    }
    fprintf(out, "%-18s %-13s %-22s %-14s %-16s %s\n", "test", "backend", "expected", "actual",
            "verdict", "detail");
    for (unsigned i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        fprintf(out, "%-18s %-13s %-22s %-14s %-16s %s\n", r->test, r->backend, r->v.expected,
                r->v.actual, verdict_name(r->v.kind), r->v.detail);
    }
}

int cmd_conformance(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, 0, 'f'}, {"backend", required_argument, 0, 'b'},
        {"guests", required_argument, 0, 'g'}, {"timeout-scale", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    enum format fmt = FORMAT_TEXT;
    const struct backend_ops *chosen[8];
    unsigned nchosen = 0;
    const char *guest_dir = NULL;
    double timeout_scale = 1.0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "f:b:g:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (!strcmp(optarg, "text"))
                fmt = FORMAT_TEXT;
            else if (!strcmp(optarg, "csv"))
                fmt = FORMAT_CSV;
            else if (!strcmp(optarg, "json"))
                fmt = FORMAT_JSON;
            else {
                fprintf(stderr, "vmlab conformance: --format is text, csv or json\n");
                return VMLAB_STATUS_USAGE;
            }
            break;
        case 'b':
            if (nchosen == 8 || !(chosen[nchosen] = backend_find(optarg))) {
                fprintf(stderr, "vmlab conformance: unknown backend '%s'\n", optarg);
                return VMLAB_STATUS_USAGE;
            }
            nchosen++;
            break;
        case 'g':
            guest_dir = optarg;
            break;
        case 's': {
            char *end;
            timeout_scale = strtod(optarg, &end);
            if (end == optarg || *end || !(timeout_scale > 0 && timeout_scale <= 100)) {
                fprintf(stderr,
                        "vmlab conformance: --timeout-scale must be a number in (0, 100]\n");
                return VMLAB_STATUS_USAGE;
            }
            break;
        }
        case 'h':
            fputs(command_usage("conformance"), stdout);
            return 0;
        default:
            fprintf(stderr, "vmlab conformance: bad option '%s'\n", argv[optind - 1]);
            return VMLAB_STATUS_USAGE;
        }
    }
    char **paths = NULL;
    unsigned npaths = 0;
    if (optind < argc) {
        paths = calloc((size_t)(argc - optind), sizeof(char *));
        for (int i = optind; i < argc; i++)
            paths[npaths++] = strdup(argv[i]);
    } else {
        char dir[PATH_MAX];
        if (guest_dir)
            snprintf(dir, sizeof(dir), "%s", guest_dir);
        else if (default_guest_dir(dir, sizeof(dir)) < 0)
            return VMLAB_STATUS_USAGE;
        if (load_manifest(dir, &paths, &npaths) < 0)
            return VMLAB_STATUS_NO_INPUT;
    }
    if (!nchosen) {
        const struct backend_ops *const *list = backend_list();
        for (unsigned i = 0; list[i] && nchosen < 8; i++)
            chosen[nchosen++] = list[i];
    }
    struct row *rows = calloc((size_t)npaths * nchosen + 1, sizeof(*rows));
    bool progress = isatty(STDERR_FILENO);
    unsigned n = 0, unexpected = 0, counts[VERDICT_SKIP + 1] = {0};
    struct machine_config base;
    machine_config_defaults(&base);
    base.timeout_scale = timeout_scale;
    for (unsigned t = 0; t < npaths; t++) {
        for (unsigned b = 0; b < nchosen; b++) {
            struct row *r = &rows[n++];
            test_name(paths[t], r->test, sizeof(r->test));
            r->backend = chosen[b]->name;
            struct guest_case gc;
            if (verdict_prepare(paths[t], chosen[b], &gc, &r->v) < 0) {
                r->v.kind = VERDICT_FAIL;
                snprintf(r->v.expected, sizeof(r->v.expected), "?");
                snprintf(r->v.actual, sizeof(r->v.actual), "bad image");
            } else {
                verdict_run(&gc, chosen[b], &base, &r->v);
            }
            counts[r->v.kind]++;
            if (verdict_is_unexpected(r->v.kind))
                unexpected++;
            if (progress) /* a person watching: one line rewritten in place */
                fprintf(stderr, "\r[%u/%u] %-18s %-13s %-16s", n, npaths * nchosen, r->test,
                        r->backend, verdict_name(r->v.kind));
        }
    }
    if (progress)
        fprintf(stderr, "\r%*s\r", 70, "");
    print_rows(rows, n, fmt, stdout);
    if (fmt == FORMAT_TEXT)
        printf("\n%u runs: %u ok, %u xfail (expected failures), %u FAIL, %u UNEXPECTED-PASS, "
               "%u skipped\n",
               n, counts[VERDICT_OK], counts[VERDICT_XFAIL], counts[VERDICT_FAIL],
               counts[VERDICT_UNEXPECTED_PASS], counts[VERDICT_SKIP]);
    for (unsigned i = 0; i < npaths; i++)
        free(paths[i]);
    free(paths);
    free(rows);
    return unexpected ? 1 : 0;
}
