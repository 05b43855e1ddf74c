/* trace_print.h - `vmlab trace` output: one line per trapped/emulated instruction or exit,
 * the instruction disassembled by Capstone (an independent second decoder), filtered and
 * summarised as struct trace_options asks. */
#ifndef VMLAB_TRACE_PRINT_H
#define VMLAB_TRACE_PRINT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "backend.h"

/* What `vmlab trace --only`, `--exclude-port`, `--summary`, `--expect-trap` ask for. */
enum trace_only_kind {
    TRACE_ONLY_EXIT = 1u << 0,       /* exits to the VMM */
    TRACE_ONLY_INTERRUPT = 1u << 1,  /* interrupts injected */
    TRACE_ONLY_EXCEPTION = 1u << 2,  /* exceptions delivered to the guest IDT */
    TRACE_ONLY_BLOCK = 1u << 3,      /* dbt: blocks translated */
    TRACE_ONLY_PAGE_FAULT = 1u << 4, /* trap_emulate, dbt: faults the shadow MMU handled */
};
#define TRACE_MAX_EXCLUDED_PORTS 16
struct trace_options {
    uint64_t only_classes; /* bit (1 << enum emu_class): emulated instructions to show */
    unsigned only_kinds;   /* enum trace_only_kind bits; both 0 = show everything */
    uint16_t exclude_ports[TRACE_MAX_EXCLUDED_PORTS];
    unsigned exclude_port_count;
    bool summary;    /* no lines: counts per class and per exit reason at the end */
    int expect_trap; /* an enum emu_class to count executions of (count_native), or -1 */
};

/* Parse a comma-separated list of class names (emu_class.h: "cli", "popf" ...) and the kinds
 * "exit", "interrupt", "exception", "block", "pagefault" into o->only_*. 0, or -EINVAL with the bad
 * name in bad[]. */
int trace_options_parse_only(struct trace_options *o, const char *list, char *bad, size_t size);
/* Parse a comma-separated list of ports (decimal or 0x hex) into o->exclude_ports. */
int trace_options_parse_ports(struct trace_options *o, const char *list, char *bad, size_t size);
/* The class named `name`, or -1. */
int trace_class_by_name(const char *name);

struct trace_printer;

/* opts may be NULL: every event, no summary. */
int trace_printer_create(struct trace_printer **out, FILE *out_stream,
                         const struct trace_options *opts);
void trace_printer_destroy(struct trace_printer *tp);
/* Print (or count) and consume every event in the ring. */
void trace_printer_drain(struct trace_printer *tp, struct vcpu *vcpu);
void trace_printer_exit(struct trace_printer *tp, const struct vm_exit *exit);
/* At the end of the run: the summary and the --expect-trap line, if asked for. `stats` gives
 * the single-step counts (vcpu_stats.native / steps). */
void trace_printer_finish(struct trace_printer *tp, const char *backend,
                          const struct vcpu_stats *stats);

#endif
