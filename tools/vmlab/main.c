/* main.c - the vmlab command-line tool: subcommand dispatch and usage. */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "commands.h"
#include "vmm/machine.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: vmlab COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  run [--backend B] [--timeout SEC] [--stats] IMAGE   run a guest\n"
        "  trace [--backend B] [--timeout SEC] IMAGE            run, printing every trap\n"
        "  check --backend B IMAGE                              run and judge against the\n"
        "                                                       guest's expectation (ctest)\n"
        "  backends                                             list backends and host caps\n"
        "  conformance [--format text|csv|json] [--backend B]... [--guests DIR] [IMAGE...]\n"
        "                                                       every guest on every backend\n"
        "  classify [--format text|csv|json] [--summary] FILE   audit an x86-64 ELF\n"
        "  bench [options]                                      benchmarks (see docs/REPORT.md)\n"
        "\n"
        "backends: trap_emulate (default), dbt, vtx\n"
        "exit status of run: the value the guest wrote to port 0xF4, or 64 usage, 65 bad image,\n"
        "66 missing file, 69 backend unavailable, 70 internal error, 80 unhandled guest\n"
        "exception, 81 triple fault, 82 time budget used up, 83 halted, 84 unassigned MMIO,\n"
        "85 entry failed, 86 guest process crashed (see README.md)\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return VMLAB_STATUS_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "__compute-peer")) /* internal: the benchmark's compute peer */
        return bench_compute_peer_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } commands[] = {
        {"run", cmd_run},
        {"trace", cmd_trace},
        {"check", cmd_check},
        {"backends", cmd_backends},
        {"conformance", cmd_conformance},
        {"classify", cmd_classify},
        {"bench", cmd_bench},
    };
    for (unsigned i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "vmlab: unknown command '%s' (try 'vmlab --help')\n", cmd);
    return VMLAB_STATUS_USAGE;
}
