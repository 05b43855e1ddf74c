/* devices.c - shared devices (see devices.h and the port map in guest_layout.h). */
#include "devices.h"

#include <errno.h>
#include <string.h>

#include "guest_layout.h"

void devices_init(struct devices *dev, FILE *console, uint64_t now_ns)
{
    memset(dev, 0, sizeof(*dev));
    dev->console = console;
    dev->start_ns = now_ns;
}

static uint32_t io_value(const struct vm_exit *e, unsigned i)
{
    uint32_t v = 0;
    memcpy(&v, e->io.data + (size_t)i * e->io.size, e->io.size);
    return v;
}

static void io_set_value(struct vm_exit *e, unsigned i, uint32_t v)
{
    memcpy(e->io.data + (size_t)i * e->io.size, &v, e->io.size);
}

static void timer_program(struct devices *dev, uint32_t period_us, uint64_t now_ns)
{
    dev->timer_period_ns = (uint64_t)period_us * 1000;
    dev->timer_pending = false;
    dev->timer_next_ns = period_us ? now_ns + dev->timer_period_ns : 0;
}

uint64_t devices_timer_poll(struct devices *dev, uint64_t now_ns)
{
    if (!dev->timer_period_ns)
        return UINT64_MAX;
    if (now_ns >= dev->timer_next_ns) {
        dev->timer_pending = true;
        /* Ticks missed while the guest could not take them coalesce into one pending
         * interrupt, as an edge-triggered line would; the next one is a period from now. */
        uint64_t late = now_ns - dev->timer_next_ns;
        dev->timer_next_ns += dev->timer_period_ns * (late / dev->timer_period_ns + 1);
    }
    return dev->timer_next_ns;
}

static enum device_result port_out(struct devices *dev, struct vm_exit *e, uint32_t v,
                                   uint64_t now_ns)
{
    switch (e->io.port) {
    case PORT_CONSOLE:
        fputc((int)(v & 0xFF), dev->console);
        dev->console_bytes++;
        return DEVICE_CONTINUE;
    case PORT_EXIT:
        dev->exit_status = (int)(v & 0xFF);
        return DEVICE_GUEST_EXIT;
    case PORT_EXC_REPORT:
        dev->report_frame_gla = v;
        return DEVICE_EXCEPTION_REPORT;
    case PORT_TIMER_PERIOD:
        timer_program(dev, v, now_ns);
        return DEVICE_CONTINUE;
    case PORT_TIMER_VECTOR:
        dev->timer_vector = (uint8_t)v;
        return DEVICE_CONTINUE;
    case PORT_BENCH_MARK:
        if (dev->mark_count < DEVICE_MAX_MARKS) {
            dev->mark_value[dev->mark_count] = v;
            dev->mark_ns[dev->mark_count++] = now_ns;
        } else {
            dev->marks_dropped++;
        }
        return DEVICE_CONTINUE;
    case PORT_SCRATCH:
        dev->scratch = v;
        return DEVICE_CONTINUE;
    case PORT_SLP_CONTROL: /* a page address with the permission in its low bits */
        if ((v & 3) > VM_SLP_NO_ACCESS) {
            dev->slp_status = EINVAL;
            dev->slp_rejected++;
            return DEVICE_CONTINUE;
        }
        dev->slp_request.ve_info = false;
        dev->slp_request.gpa = v & ~0xFFFULL;
        dev->slp_request.permission = v & 3;
        dev->slp_request.convertible = (v & SLP_CONVERTIBLE) != 0;
        return DEVICE_SLP_REQUEST;
    case PORT_SLP_VE_INFO:
        dev->slp_request.ve_info = true;
        dev->slp_request.gpa = v;
        return DEVICE_SLP_REQUEST;
    case PORT_FIFO:
        for (unsigned b = 0; b < e->io.size; b++) {
            if (dev->fifo_count == DEVICE_FIFO_SIZE) {
                dev->unhandled_io++; /* overflow: counted, reported by --stats */
                break;
            }
            dev->fifo[(dev->fifo_head + dev->fifo_count++) % DEVICE_FIFO_SIZE] =
                (uint8_t)(v >> (8 * b));
        }
        return DEVICE_CONTINUE;
    default:
        dev->unhandled_io++;
        return DEVICE_CONTINUE;
    }
}

static uint32_t port_in(struct devices *dev, const struct vm_exit *e, uint64_t now_ns)
{
    switch (e->io.port) {
    case PORT_CLOCK_US:
        return (uint32_t)((now_ns - dev->start_ns) / 1000);
    case PORT_CONSOLE:
        return 0xE9; /* Bochs/QEMU debugcon readback */
    case PORT_TIMER_TICKS:
        return dev->timer_ticks_delivered;
    case PORT_SCRATCH:
        return dev->scratch;
    case PORT_SLP_EXITS:
        return dev->slp_exits;
    case PORT_SLP_LAST_GPA:
        return (uint32_t)dev->slp_last_gpa;
    case PORT_SLP_STATUS:
        return dev->slp_status;
    case PORT_FIFO: {
        uint32_t v = 0;
        for (unsigned b = 0; b < e->io.size; b++) {
            uint8_t byte = 0xFF;
            if (dev->fifo_count) {
                byte = dev->fifo[dev->fifo_head];
                dev->fifo_head = (dev->fifo_head + 1) % DEVICE_FIFO_SIZE;
                dev->fifo_count--;
            }
            v |= (uint32_t)byte << (8 * b);
        }
        return v;
    }
    default:
        dev->unhandled_io++;
        return 0xFFFFFFFF;
    }
}

enum device_result devices_io(struct devices *dev, struct vm_exit *e, uint64_t now_ns)
{
    unsigned count = e->io.count ? e->io.count : 1;
    for (unsigned i = 0; i < count; i++) {
        if (e->io.direction == VM_IO_OUT) {
            enum device_result r = port_out(dev, e, io_value(e, i), now_ns);
            if (r != DEVICE_CONTINUE)
                return r;
        } else {
            io_set_value(e, i, port_in(dev, e, now_ns));
        }
    }
    return DEVICE_CONTINUE;
}

enum device_result devices_mmio(struct devices *dev, struct vm_exit *e)
{
    uint64_t off = e->mmio.gpa - MMIO_SCRATCH;
    if (e->mmio.gpa < MMIO_SCRATCH || off + e->mmio.len > sizeof(dev->mmio_scratch) ||
        e->mmio.len == 0 || e->mmio.len > 8)
        return DEVICE_UNASSIGNED_MMIO;
    uint8_t *reg = (uint8_t *)&dev->mmio_scratch + off;
    if (e->mmio.is_write)
        memcpy(reg, e->mmio.data, e->mmio.len);
    else
        memcpy(e->mmio.data, reg, e->mmio.len);
    return DEVICE_CONTINUE;
}
