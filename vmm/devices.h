/* devices.h - the devices every backend shares: debug console, exit port, virtual timer,
 * scratch register, byte FIFO, exception-report port, benchmark marks, MMIO scratch.
 *
 * One handler signature for port I/O and MMIO, as in kvmtool: the VMM passes the exit record;
 * the device fills IN/read data in place and says whether the run goes on.
 */
#ifndef VMLAB_DEVICES_H
#define VMLAB_DEVICES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vm_exit.h"

enum device_result {
    DEVICE_CONTINUE,         /* handled; run on */
    DEVICE_GUEST_EXIT,       /* the guest wrote PORT_EXIT: exit_status holds the value */
    DEVICE_EXCEPTION_REPORT, /* a platform stub reported an exception: report_frame_gla */
    DEVICE_UNASSIGNED_MMIO,  /* access to guest space with no device */
    DEVICE_SLP_REQUEST,      /* the guest asked for a second-level permission: slp_request */
};

#define DEVICE_FIFO_SIZE 4096
#define DEVICE_MAX_MARKS 64

struct devices {
    FILE *console;
    uint64_t console_bytes;
    uint64_t start_ns; /* PORT_CLOCK_US reads time since this */
    int exit_status;
    uint64_t report_frame_gla;
    /* virtual timer: period 0 = stopped */
    uint64_t timer_period_ns;
    uint64_t timer_next_ns; /* CLOCK_MONOTONIC deadline of the next tick */
    uint8_t timer_vector;
    bool timer_pending; /* a tick is waiting to be delivered (ticks coalesce, like a line) */
    uint32_t timer_ticks_delivered;
    uint32_t scratch;
    uint8_t fifo[DEVICE_FIFO_SIZE];
    uint32_t fifo_head, fifo_count;
    uint64_t mmio_scratch;
    uint64_t unhandled_io; /* accesses to ports nobody owns: writes ignored, reads all ones */
    unsigned mark_count;
    uint32_t mark_value[DEVICE_MAX_MARKS];
    uint64_t mark_ns[DEVICE_MAX_MARKS];
    uint64_t marks_dropped;
    /* second-level permissions: the last request, and the violations handled as exits */
    struct {
        bool ve_info; /* the request sets the #VE information area (gpa), else a permission */
        uint64_t gpa;
        unsigned permission; /* enum vm_slp_permission */
        bool convertible;
    } slp_request;
    uint32_t slp_exits;
    uint64_t slp_last_gpa;
    uint32_t slp_status;   /* PORT_SLP_STATUS: 0, or EINVAL for a rejected request */
    uint64_t slp_rejected; /* requests rejected as malformed (--stats) */
};

void devices_init(struct devices *dev, FILE *console, uint64_t now_ns);
/* Port I/O exit: OUT data consumed, IN data written into exit->io.data. */
enum device_result devices_io(struct devices *dev, struct vm_exit *exit, uint64_t now_ns);
/* MMIO exit: reads fill exit->mmio.data. */
enum device_result devices_mmio(struct devices *dev, struct vm_exit *exit);
/* Timer bookkeeping: marks a tick pending when due; returns the next deadline (or UINT64_MAX). */
uint64_t devices_timer_poll(struct devices *dev, uint64_t now_ns);

#endif
