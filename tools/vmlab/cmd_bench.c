/* cmd_bench.c - `vmlab bench [--quick] [--out DIR] [--repetitions N]`: run the benchmarks and
 * write the report (bench/). Progress on stderr. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "commands.h"
#include "vmm/machine.h"

int cmd_bench(int argc, char **argv)
{
    static const struct option longopts[] = {{"quick", no_argument, 0, 'q'},
                                             {"out", required_argument, 0, 'o'},
                                             {"repetitions", required_argument, 0, 'r'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    struct bench_options o = {.quick = false, .repetitions = 0, .out_dir = "report/out"};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "qo:r:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            o.quick = true;
            break;
        case 'o':
            o.out_dir = optarg;
            break;
        case 'r':
            o.repetitions = (unsigned)atoi(optarg);
            if (o.repetitions < 1 || o.repetitions > 31) {
                fprintf(stderr, "vmlab bench: --repetitions wants 1..31\n");
                return VMLAB_STATUS_USAGE;
            }
            break;
        case 'h':
            printf("usage: vmlab bench [--quick] [--out DIR] [--repetitions N]\n");
            return 0;
        default:
            fprintf(stderr, "vmlab bench: bad option '%s'\n", argv[optind - 1]);
            return VMLAB_STATUS_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "vmlab bench: unexpected argument '%s'\n", argv[optind]);
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
    struct bench_results *r = calloc(1, sizeof(*r));
    if (!r)
        return VMLAB_STATUS_INTERNAL;
    r->repetitions = o.repetitions;
    fprintf(stderr, "bench: host facts and kernel floor\n");
    bench_measure_host(&r->host, &o);
    bench_measure_peers(r, &o);
    bench_measure_classes(r, &o);
    bench_measure_breakeven(r, &o);
    int rc = bench_write_report(r, &o);
    fprintf(stderr, "bench: report written to %s/index.html and index.md\n", o.out_dir);
    free(r);
    return rc == 0 ? 0 : VMLAB_STATUS_INTERNAL;
}
