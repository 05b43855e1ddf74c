/* cmd_bench.c - `vmlab bench [--quick] [--out DIR] [--repetitions N] [--only NAME,...]`: run
 * the benchmarks and write the report (bench/). Progress on stderr when it is a terminal. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "commands.h"
#include "vmm/machine.h"

static void bench_usage(FILE *out)
{
    fprintf(out, "%s\nexperiments (report order):\n", command_usage("bench"));
    unsigned count;
    const struct bench_experiment *const *list = bench_experiments(&count);
    for (unsigned i = 0; i < count; i++)
        fprintf(out, "  %-12s %s\n", list[i]->name, list[i]->summary);
}

/* Every name of a comma-separated list is an experiment. */
static bool valid_only(const char *only)
{
    unsigned count;
    const struct bench_experiment *const *list = bench_experiments(&count);
    for (const char *p = only; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        bool found = false;
        for (unsigned i = 0; i < count && !found; i++)
            found = strlen(list[i]->name) == n && !strncmp(list[i]->name, p, n);
        if (!found) {
            fprintf(stderr, "vmlab bench: unknown experiment '%.*s' (see vmlab bench --help)\n",
                    (int)n, p);
            return false;
        }
        p += n + (comma != NULL);
    }
    return *only != 0;
}

int cmd_bench(int argc, char **argv)
{
    static const struct option longopts[] = {{"quick", no_argument, 0, 'q'},
                                             {"out", required_argument, 0, 'o'},
                                             {"repetitions", required_argument, 0, 'r'},
                                             {"only", required_argument, 0, 'n'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    struct bench_options o = {.quick = false, .repetitions = 0, .out_dir = "report/out"};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "qo:r:n:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            o.quick = true;
            break;
        case 'o':
            o.out_dir = optarg;
            break;
        case 'r': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 31) {
                fprintf(stderr, "vmlab bench: --repetitions wants 1..31, got '%s'\n", optarg);
                return VMLAB_STATUS_USAGE;
            }
            o.repetitions = (unsigned)v;
            break;
        }
        case 'n':
            if (!valid_only(optarg))
                return VMLAB_STATUS_USAGE;
            o.only = optarg;
            break;
        case 'h':
            bench_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "vmlab bench: bad option '%s' (try 'vmlab bench --help')\n",
                    argv[optind - 1]);
            return VMLAB_STATUS_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "vmlab bench: unexpected argument '%s'\n", argv[optind]);
        return VMLAB_STATUS_USAGE;
    }
    if (!*o.out_dir) {
        fprintf(stderr, "vmlab bench: --out wants a folder\n");
        return VMLAB_STATUS_USAGE;
    }
    if (!o.repetitions)
        o.repetitions = o.quick ? 3 : 7;
    static char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        fprintf(stderr, "vmlab bench: cannot find my own executable\n");
        return VMLAB_STATUS_INTERNAL;
    }
    exe[n] = 0;
    o.self_exe = exe;
    if (bench_run(&o) < 0) {
        fprintf(stderr, "vmlab bench: the report in %s is INCOMPLETE (errors above)\n", o.out_dir);
        return VMLAB_STATUS_INTERNAL;
    }
    fprintf(stderr, "bench: report written to %s/index.html and index.md\n", o.out_dir);
    return 0;
}
