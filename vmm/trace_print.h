/* trace_print.h - `vmlab trace` output: one line per trapped/emulated instruction or exit,
 * the instruction disassembled by Capstone (an independent second decoder). */
#ifndef VMLAB_TRACE_PRINT_H
#define VMLAB_TRACE_PRINT_H

#include <stdio.h>

#include "backend.h"

struct trace_printer;

int trace_printer_create(struct trace_printer **out, FILE *out_stream);
void trace_printer_destroy(struct trace_printer *tp);
/* Print and consume every event in the ring. */
void trace_printer_drain(struct trace_printer *tp, struct vcpu *vcpu);
void trace_printer_exit(struct trace_printer *tp, const struct vm_exit *exit);

#endif
