/* main.c - the vmlab command-line tool: subcommand dispatch, usage, version.
 *
 * Conventions (tests/cli/cli_conventions.sh): `vmlab --version`; `vmlab help CMD` and
 * `vmlab CMD --help` print CMD's usage on stdout and exit 0; a bad command line prints one line
 * on stderr and exits 64; results go to stdout, diagnostics to stderr, progress to stderr only
 * when it is a terminal.
 */
#include <stdio.h>
#include <string.h>

#include <Zydis/Zydis.h>
#include <capstone/capstone.h>

#include "bench/bench.h"
#include "commands.h"
#include "vmm/machine.h"

#ifndef VMLAB_VERSION
#define VMLAB_VERSION "unknown"
#endif

#define RUN_OPTIONS                                                                                \
    "  --backend B      trap_emulate (default), dbt or vtx\n"                                      \
    "  --timeout SEC    time budget (default 5 s); a guest still running then ends with 82\n"      \
    "  --stats          exits and emulated instructions by class, then the backend's own\n"        \
    "                   counters (dbt: translation B; trap_emulate, dbt: the shadow MMU's;\n"      \
    "                   vtx: KVM's statistics), on stderr\n"                                       \
    "  --no-trap-cpuid  trap_emulate: leave CPUID native even where CPUID faulting exists\n"       \
    "  --no-trap-rdtsc  trap_emulate: leave RDTSC native even where PR_SET_TSC works\n"            \
    "  --shadow-roots N trap_emulate, dbt: address spaces the shadow MMU keeps across CR3\n"       \
    "                   switches (0-16, default 4; 0 rebuilds on every switch)\n"

static const struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
    const char *usage;
} commands[] = {
    {"run", cmd_run, "run a guest (console on stdout)",
     "usage: vmlab run [--backend B] [--timeout SEC] [--stats] [--no-trap-cpuid] "
     "[--no-trap-rdtsc] [--shadow-roots N] IMAGE\n"
     "Runs the guest ELF IMAGE; its console (port 0xE9) goes to stdout. Exit status: the value\n"
     "the guest wrote to port 0xF4, or one of vmlab's endings (64-86, see "
     "README.md).\n" RUN_OPTIONS},
    {"trace", cmd_trace, "run, printing every trap/exit disassembled",
     "usage: vmlab trace [--backend B] [--timeout SEC] [--stats] [--no-trap-cpuid] "
     "[--no-trap-rdtsc] [--shadow-roots N]\n"
     "                   [--only CLASS,...] [--exclude-port P,...] [--summary] "
     "[--expect-trap CLASS] IMAGE\n"
     "As run, and prints every trap or exit on stderr: guest RIP, bytes, Capstone disassembly\n"
     "and what the emulator did.\n" RUN_OPTIONS
     "  --only LIST      keep these classes (names as in classify) and the kinds exit,\n"
     "                   interrupt, exception, block, pagefault\n"
     "  --exclude-port P drop port I/O on these ports (decimal or 0x hex, at most 16)\n"
     "  --summary        only counts per class and per exit reason\n"
     "  --expect-trap C  trap_emulate: single-step the guest (RFLAGS.TF) and report how often\n"
     "                   class C executed and how often it trapped (slow)\n"},
    {"check", cmd_check, "run and judge against the guest's declared expectation",
     "usage: vmlab check [--backend B] [--timeout SEC] [--no-trap-cpuid] [--no-trap-rdtsc] "
     "IMAGE\n"
     "Runs IMAGE and judges the ending against the expectation the guest declares for this\n"
     "backend and host. Exit 0 as expected (pass or expected failure), 1 unexpected (failure\n"
     "or unexpected pass), 77 skipped (ctest SKIP_RETURN_CODE).\n" RUN_OPTIONS},
    {"backends", cmd_backends, "list backends, their availability and the host capabilities",
     "usage: vmlab backends [--format text|json]\n"
     "Lists trap_emulate, dbt and vtx as available or unavailable with the reason, and the host\n"
     "capabilities that change what they can catch (CPUID faulting, RDTSC trapping, UMIP, the\n"
     "KVM flavor).\n"},
    {"conformance", cmd_conformance, "every guest test on every backend, as a matrix",
     "usage: vmlab conformance [--format text|csv|json] [--backend B]... [--guests DIR]\n"
     "                         [--timeout-scale F] [IMAGE...]\n"
     "Runs every guest test (the manifest of DIR, by default the build's guest_tests) or the\n"
     "given IMAGEs on every (chosen) backend: test, backend, expected, actual, verdict, reason.\n"
     "Exit 1 on any unexpected failure or unexpected pass.\n"
     "  --timeout-scale F  multiply every time budget by F (0 < F <= 100), for emulated hosts\n"
     "                     such as the nested-KVM test, where guests run far slower\n"},
    {"classify", cmd_classify, "audit an x86-64 ELF for sensitive instructions",
     "usage: vmlab classify [--format text|csv|json] [--summary] FILE\n"
     "Decodes every executable section of FILE with Zydis and lists each privileged or\n"
     "sensitive-unprivileged instruction with its class, then a summary by category.\n"
     "  --format csv      only CSV: the instruction rows, or with --summary the summary rows\n"
     "                   (category,class,count); the one-line totals go to stderr\n"
     "  --summary         the summary only\n"},
    {"bench", cmd_bench, "the benchmarks behind `make report` (docs/REPORT.md)",
     "usage: vmlab bench [--quick] [--out DIR] [--repetitions N] [--only NAME[,NAME...]]\n"
     "Measures this host and writes the report into DIR (default report/out, created with its\n"
     "parents): index.html, index.md, results.json, CSV, figures. Exit 0 only if every file and\n"
     "figure was written.\n"
     "  --quick           fewer iterations and repetitions (a minute or two)\n"
     "  --repetitions N   fresh guest runs per measurement (default 7, 3 with --quick)\n"
     "  --only NAMES      run only these experiments (comma-separated)\n"},
};
#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

const char *command_usage(const char *name)
{
    for (unsigned i = 0; i < COMMAND_COUNT; i++)
        if (!strcmp(commands[i].name, name))
            return commands[i].usage;
    return "";
}

static void usage(FILE *out)
{
    fprintf(out, "usage: vmlab COMMAND [options]\n"
                 "       vmlab help COMMAND | vmlab COMMAND --help | vmlab --version\n\n"
                 "commands:\n");
    for (unsigned i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nbackends: trap_emulate (default), dbt, vtx\n"
            "exit status of run: the value the guest wrote to port 0xF4, or 64 usage, 65 bad "
            "image,\n66 missing file, 69 backend unavailable, 70 internal error, 80 unhandled "
            "guest\nexception, 81 triple fault, 82 time budget used up, 83 halted, 84 unassigned "
            "MMIO,\n85 entry failed, 86 guest process crashed (see README.md)\n");
}

static void version(void)
{
    int cs_major = 0, cs_minor = 0;
    cs_version(&cs_major, &cs_minor);
    printf("vmlab %s (Zydis %u.%u.%u, Capstone %d.%d)\n", VMLAB_VERSION,
           ZYDIS_VERSION_MAJOR(ZYDIS_VERSION), ZYDIS_VERSION_MINOR(ZYDIS_VERSION),
           ZYDIS_VERSION_PATCH(ZYDIS_VERSION), cs_major, cs_minor);
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
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        version();
        return 0;
    }
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        for (unsigned i = 0; i < COMMAND_COUNT; i++)
            if (!strcmp(argv[2], commands[i].name)) {
                /* the command's own --help: identical text, one place */
                char *help_argv[] = {argv[2], "--help", NULL};
                return commands[i].fn(2, help_argv);
            }
        fprintf(stderr, "vmlab help: unknown command '%s' (try 'vmlab help')\n", argv[2]);
        return VMLAB_STATUS_USAGE;
    }
    for (unsigned i = 0; i < COMMAND_COUNT; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "vmlab: unknown command '%s' (try 'vmlab --help')\n", cmd);
    return VMLAB_STATUS_USAGE;
}
