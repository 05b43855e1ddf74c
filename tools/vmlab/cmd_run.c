/* cmd_run.c - `vmlab run`, `vmlab trace` and `vmlab check`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mmu/shadow_mmu.h"
#include "isolated_run.h"
#include "verdict.h"

struct run_options {
    struct machine_config config;
    bool stats;
    bool backend_given;
    struct trace_options trace; /* trace only: --only, --exclude-port, --summary, --expect-trap */
    bool trace_filtered;
};

/* Parse the options shared by run/trace/check. Returns the index of IMAGE or -1. */
static int parse_run_options(int argc, char **argv, struct run_options *o, const char *cmd)
{
    static const struct option longopts[] = {
        {"backend", required_argument, 0, 'b'}, {"timeout", required_argument, 0, 't'},
        {"stats", no_argument, 0, 's'},         {"no-trap-cpuid", no_argument, 0, 'C'},
        {"no-trap-rdtsc", no_argument, 0, 'R'}, {"shadow-roots", required_argument, 0, 'N'},
        {"only", required_argument, 0, 'O'},    {"exclude-port", required_argument, 0, 'P'},
        {"summary", no_argument, 0, 'S'},       {"expect-trap", required_argument, 0, 'E'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    machine_config_defaults(&o->config);
    o->config.backend = &trap_emulate_backend_ops;
    o->trace.expect_trap = -1;
    bool trace = !strcmp(cmd, "trace");
    char bad[128];
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "b:t:sh", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            o->config.backend = backend_find(optarg);
            o->backend_given = true;
            if (!o->config.backend) {
                fprintf(stderr, "vmlab %s: unknown backend '%s' (trap_emulate, dbt, vtx)\n", cmd,
                        optarg);
                return -1;
            }
            break;
        case 't': {
            char *end;
            o->config.timeout_s = strtod(optarg, &end);
            /* written so that NaN fails too: every comparison with NaN is false */
            if (end == optarg || *end || !(o->config.timeout_s > 0 && o->config.timeout_s <= 3600)) {
                fprintf(stderr, "vmlab %s: --timeout wants seconds in (0, 3600], got '%s'\n", cmd,
                        optarg);
                return -1;
            }
            break;
        }
        case 's':
            o->stats = true;
            break;
        case 'C':
            o->config.trap_cpuid = false;
            break;
        case 'R':
            o->config.trap_rdtsc = false;
            break;
        case 'N': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || end == optarg || n < 0 || n > SHADOW_MAX_ROOTS) {
                fprintf(stderr,
                        "vmlab %s: --shadow-roots wants 0..%d (0: rebuild the shadow on "
                        "every CR3 switch), got '%s'\n",
                        cmd, SHADOW_MAX_ROOTS, optarg);
                return -1;
            }
            o->config.shadow_roots = (unsigned)n;
            break;
        }
        case 'O':
        case 'P':
        case 'S':
        case 'E':
            if (!trace) {
                fprintf(stderr, "vmlab %s: %s is an option of vmlab trace\n", cmd,
                        argv[optind - 1]);
                return -1;
            }
            o->trace_filtered = true;
            if (c == 'S') {
                o->trace.summary = true;
            } else if (c == 'E') {
                o->trace.expect_trap = trace_class_by_name(optarg);
                if (o->trace.expect_trap < 0) {
                    fprintf(stderr,
                            "vmlab trace: --expect-trap: unknown class '%s' (see vmlab "
                            "classify --help for the names)\n",
                            optarg);
                    return -1;
                }
            } else if ((c == 'O'
                            ? trace_options_parse_only(&o->trace, optarg, bad, sizeof(bad))
                            : trace_options_parse_ports(&o->trace, optarg, bad, sizeof(bad))) < 0) {
                fprintf(stderr, "vmlab trace: %s: bad item '%s' (%s)\n", argv[optind - 1], bad,
                        c == 'O' ? "class names as in vmlab classify, or exit, interrupt, "
                                   "exception, block, pagefault"
                                 : "ports 0-65535, decimal or 0x hex, at most 16");
                return -1;
            }
            break;
        case 'h':
            fputs(command_usage(cmd), stdout);
            exit(0);
        default:
            fprintf(stderr, "vmlab %s: bad option '%s'\n", cmd, argv[optind - 1]);
            return -1;
        }
    }
    if (o->trace.expect_trap >= 0 && o->config.backend != &trap_emulate_backend_ops) {
        fprintf(stderr,
                "vmlab trace: --expect-trap counts by single-stepping the guest where it runs "
                "natively: trap_emulate only (dbt: see --stats for callouts and inline "
                "translations; vtx: KVM's exit counts)\n");
        return -1;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "vmlab %s: expected exactly one IMAGE (try 'vmlab %s --help')\n", cmd, cmd);
        return -1;
    }
    return optind;
}

static int run_common(int argc, char **argv, bool trace, const char *cmd)
{
    struct run_options o;
    memset(&o, 0, sizeof(o));
    int idx = parse_run_options(argc, argv, &o, cmd);
    if (idx < 0)
        return VMLAB_STATUS_USAGE;
    o.config.image_path = argv[idx];
    o.config.trace = trace;
    if (o.trace_filtered)
        o.config.trace_options = &o.trace;
    struct machine_result *r = calloc(1, sizeof(*r));
    if (!r)
        return VMLAB_STATUS_INTERNAL;
    isolated_run(&o.config, r);
    if (r->message[0])
        fprintf(stderr, "vmlab: %s\n", r->message);
    if (o.stats)
        machine_print_stats(r, stderr);
    int status = r->status;
    free(r);
    return status;
}

int cmd_run(int argc, char **argv)
{
    return run_common(argc, argv, false, "run");
}

int cmd_trace(int argc, char **argv)
{
    return run_common(argc, argv, true, "trace");
}

int cmd_check(int argc, char **argv)
{
    struct run_options o;
    memset(&o, 0, sizeof(o));
    int idx = parse_run_options(argc, argv, &o, "check");
    if (idx < 0)
        return VMLAB_STATUS_USAGE;
    struct guest_case gc;
    struct verdict v;
    if (verdict_prepare(argv[idx], o.config.backend, &gc, &v) < 0) {
        fprintf(stderr, "vmlab check: %s: %s\n", argv[idx], v.detail);
        return VMLAB_STATUS_BAD_IMAGE;
    }
    verdict_run(&gc, o.config.backend, &o.config, &v);
    printf("%s on %s: %s (expected %s, got %s)%s%s\n", argv[idx], o.config.backend->name,
           verdict_name(v.kind), v.expected, v.actual, v.detail[0] ? ": " : "", v.detail);
    switch (v.kind) {
    case VERDICT_OK:
    case VERDICT_XFAIL:
        return 0;
    case VERDICT_SKIP:
        return VMLAB_STATUS_SKIP;
    default:
        return 1;
    }
}
