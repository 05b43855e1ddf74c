/* test_devices.c - the shared devices: console, exit port, timer, scratch, FIFO, MMIO. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/devices.h"
#include "vmm/guest_layout.h"

static struct vm_exit io(uint16_t port, uint8_t dir, uint8_t size, uint32_t value)
{
    struct vm_exit e;
    memset(&e, 0, sizeof(e));
    e.reason = VM_EXIT_IO;
    e.io.port = port;
    e.io.direction = dir;
    e.io.size = size;
    e.io.count = 1;
    memcpy(e.io.data, &value, size);
    return e;
}

static uint32_t in_value(const struct vm_exit *e)
{
    uint32_t v = 0;
    memcpy(&v, e->io.data, e->io.size);
    return v;
}

static void console_and_exit(void **state)
{
    (void)state;
    char buf[16] = "";
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    struct devices d;
    devices_init(&d, f, 0);
    struct vm_exit e = io(PORT_CONSOLE, VM_IO_OUT, 1, 'A');
    assert_int_equal(devices_io(&d, &e, 0), DEVICE_CONTINUE);
    e = io(PORT_CONSOLE, VM_IO_IN, 1, 0);
    devices_io(&d, &e, 0);
    assert_int_equal(in_value(&e), 0xE9);
    e = io(PORT_EXIT, VM_IO_OUT, 4, 0x12A);
    assert_int_equal(devices_io(&d, &e, 0), DEVICE_GUEST_EXIT);
    assert_int_equal(d.exit_status, 0x2A); /* low 8 bits, like a process status */
    fclose(f);
    assert_string_equal(buf, "A");
    assert_int_equal(d.console_bytes, 1);
}

static void scratch_fifo_and_unhandled(void **state)
{
    (void)state;
    struct devices d;
    devices_init(&d, stdout, 0);
    struct vm_exit e = io(PORT_SCRATCH, VM_IO_OUT, 4, 0xDEADBEEF);
    devices_io(&d, &e, 0);
    e = io(PORT_SCRATCH, VM_IO_IN, 2, 0);
    devices_io(&d, &e, 0);
    assert_int_equal(in_value(&e), 0xBEEF);
    /* REP OUTSB of 3 bytes then INSW + INSB: FIFO order, 0xFF when empty */
    memset(&e, 0, sizeof(e));
    e.io.port = PORT_FIFO;
    e.io.direction = VM_IO_OUT;
    e.io.size = 1;
    e.io.count = 3;
    memcpy(e.io.data, "xyz", 3);
    devices_io(&d, &e, 0);
    e = io(PORT_FIFO, VM_IO_IN, 2, 0);
    devices_io(&d, &e, 0);
    assert_int_equal(in_value(&e), 'x' | ('y' << 8));
    e = io(PORT_FIFO, VM_IO_IN, 2, 0);
    devices_io(&d, &e, 0);
    assert_int_equal(in_value(&e), 'z' | (0xFF << 8));
    e = io(PORT_CLOCK_US, VM_IO_IN, 4, 0);
    devices_io(&d, &e, 2500000); /* 2.5 ms after start */
    assert_int_equal(in_value(&e), 2500);
    e = io(0x1234, VM_IO_IN, 4, 0);
    devices_io(&d, &e, 0);
    assert_int_equal(in_value(&e), 0xFFFFFFFF);
    assert_int_equal(d.unhandled_io, 1);
}

static void timer_ticks_coalesce(void **state)
{
    (void)state;
    struct devices d;
    devices_init(&d, stdout, 0);
    assert_int_equal(devices_timer_poll(&d, 0), UINT64_MAX); /* stopped */
    struct vm_exit e = io(PORT_TIMER_VECTOR, VM_IO_OUT, 1, 0x40);
    devices_io(&d, &e, 1000);
    e = io(PORT_TIMER_PERIOD, VM_IO_OUT, 4, 100); /* 100 us */
    devices_io(&d, &e, 1000);
    assert_int_equal(d.timer_vector, 0x40);
    assert_int_equal(devices_timer_poll(&d, 1000 + 50000), 1000 + 100000);
    assert_false(d.timer_pending);
    /* 3.5 periods late: one pending tick, next deadline on the period grid */
    uint64_t next = devices_timer_poll(&d, 1000 + 350000);
    assert_true(d.timer_pending);
    assert_int_equal(next, 1000 + 400000);
    e = io(PORT_TIMER_PERIOD, VM_IO_OUT, 4, 0);
    devices_io(&d, &e, 0);
    assert_false(d.timer_pending);
    assert_int_equal(devices_timer_poll(&d, 10000000), UINT64_MAX);
}

static void mmio_scratch_and_unassigned(void **state)
{
    (void)state;
    struct devices d;
    devices_init(&d, stdout, 0);
    struct vm_exit e;
    memset(&e, 0, sizeof(e));
    e.reason = VM_EXIT_MMIO;
    e.mmio.gpa = MMIO_SCRATCH + 4;
    e.mmio.len = 4;
    e.mmio.is_write = 1;
    uint32_t v = 0xCAFEF00D;
    memcpy(e.mmio.data, &v, 4);
    assert_int_equal(devices_mmio(&d, &e), DEVICE_CONTINUE);
    e.mmio.gpa = MMIO_SCRATCH;
    e.mmio.len = 8;
    e.mmio.is_write = 0;
    assert_int_equal(devices_mmio(&d, &e), DEVICE_CONTINUE);
    uint64_t got;
    memcpy(&got, e.mmio.data, 8);
    assert_int_equal(got, 0xCAFEF00D00000000ULL);
    e.mmio.gpa = MMIO_SCRATCH + 6; /* straddles the register's end */
    e.mmio.len = 4;
    assert_int_equal(devices_mmio(&d, &e), DEVICE_UNASSIGNED_MMIO);
    e.mmio.gpa = GUEST_MMIO_BASE + 0x100000;
    assert_int_equal(devices_mmio(&d, &e), DEVICE_UNASSIGNED_MMIO);
}

static void bench_marks_are_timestamped(void **state)
{
    (void)state;
    struct devices d;
    devices_init(&d, stdout, 0);
    for (unsigned i = 0; i < DEVICE_MAX_MARKS + 3; i++) {
        struct vm_exit e = io(PORT_BENCH_MARK, VM_IO_OUT, 4, i);
        devices_io(&d, &e, 1000 + i);
    }
    assert_int_equal(d.mark_count, DEVICE_MAX_MARKS);
    assert_int_equal(d.mark_value[5], 5);
    assert_int_equal(d.mark_ns[5], 1005);
    assert_int_equal(d.marks_dropped, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(console_and_exit),
        cmocka_unit_test(scratch_fifo_and_unhandled),
        cmocka_unit_test(timer_ticks_coalesce),
        cmocka_unit_test(mmio_scratch_and_unassigned),
        cmocka_unit_test(bench_marks_are_timestamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
