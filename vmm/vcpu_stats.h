/* vcpu_stats.h - counters every backend keeps the same way, and the trace ring.
 *
 * Counters are plain uint64_t incremented by the owning thread (signal handlers included: the
 * handler runs on that thread). The trace ring is filled by backends (even from a signal
 * handler: fixed-size records, no allocation) and drained by the VMM after every exit; a
 * backend whose ring is full exits with VM_EXIT_INTR so that nothing is lost.
 */
#ifndef VMLAB_VCPU_STATS_H
#define VMLAB_VCPU_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "../emu/emu_class.h"
#include "vm_exit.h"

struct vcpu_stats {
    uint64_t exits[VM_EXIT_REASON_MAX_VALUE + 1];
    uint64_t emulated[EMU_CLASS_MAX_VALUE + 1]; /* instructions emulated, by class */
    uint64_t interrupts_injected;
    uint64_t exceptions_delivered; /* to a guest IDT handler */
    /* vm_config.count_native only: guest instructions single-stepped, and the sensitive ones
     * among them, by class, that executed natively without trapping */
    uint64_t steps;
    uint64_t native[EMU_CLASS_MAX_VALUE + 1];
};

/* One trapped/emulated instruction, recorded for `vmlab trace`. */
struct trace_event {
    uint64_t rip;      /* guest RIP of the instruction */
    uint8_t bytes[15]; /* instruction bytes (for Capstone) */
    uint8_t length;
    uint16_t emu_class; /* enum emu_class */
    uint16_t kind;      /* enum trace_event_kind */
    const char *field;  /* static string: "IF_virt", "CR3", "port 0xe9", ... or NULL */
    uint64_t old_value, new_value;
    int32_t rip_delta; /* how far RIP moved (0 for IN awaiting data, etc.) */
    uint8_t vector;    /* for TRACE_EXCEPTION / TRACE_INTERRUPT */
    uint64_t aux;      /* block address, target, error code ... */
    /* TRACE_BLOCK: the guest-physical pages its code was read from (0: none);
     * TRACE_PAGE_FAULT: the walk's entries, PML4E first (length of them) */
    uint64_t extra[4];
};

enum trace_event_kind {
    TRACE_EMULATED,   /* an instruction emulated on the virtual CPU */
    TRACE_EXIT,       /* an exit to the VMM (aux = reason) */
    TRACE_EXCEPTION,  /* an exception delivered to the guest IDT */
    TRACE_INTERRUPT,  /* an external interrupt injected */
    TRACE_BLOCK,      /* dbt: a block translated (aux = host address, field = NULL) */
    TRACE_PAGE_FAULT, /* the shadow MMU handled a fault: field = what it was, aux = the linear
                         address, old_value = guest-physical, new_value = access/error code */
    TRACE_EVENT_KIND_MAX_VALUE = TRACE_PAGE_FAULT
};

#define TRACE_RING_SIZE 4096

struct trace_ring {
    uint32_t head, tail; /* head = next write; tail = next read; head - tail <= SIZE */
    uint32_t dropped;    /* must stay 0: a backend exits before the ring overflows */
    struct trace_event events[TRACE_RING_SIZE];
};

static inline bool trace_ring_full(const struct trace_ring *r)
{
    return r->head - r->tail >= TRACE_RING_SIZE;
}

/* Returns the slot to fill, or NULL (and counts a drop) when full. */
static inline struct trace_event *trace_ring_push(struct trace_ring *r)
{
    if (trace_ring_full(r)) {
        r->dropped++;
        return 0;
    }
    return &r->events[r->head++ % TRACE_RING_SIZE];
}

#endif
