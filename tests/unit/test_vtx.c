/* test_vtx.c - the vtx backend against a real /dev/kvm: a guest writes two pages, the dirty
 * log (KVM_GET_DIRTY_LOG through the interface) reports exactly those; the state round-trips
 * through KVM's register structures. Exits 77 (ctest SKIP) where /dev/kvm is absent: never
 * PASS and never FAIL without KVM. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "emu/emu.h"
#include "vmm/backend.h"
#include "vmm/guest_layout.h"
#include "vmm/platform.h"

static struct guest_memory *mem;
static struct vm *vm;
static struct vcpu *vcpu;

static int setup(void **unused)
{
    (void)unused;
    if (guest_memory_create(0, &mem) < 0)
        return -1;
    platform_setup(mem);
    struct vm_config config = {.mem = mem};
    if (vtx_backend_ops.vm_create(&config, &vm) < 0 || vtx_backend_ops.vcpu_create(vm, &vcpu) < 0)
        return -1;
    return 0;
}

static int teardown(void **unused)
{
    (void)unused;
    vtx_backend_ops.vcpu_destroy(vcpu);
    vtx_backend_ops.vm_destroy(vm);
    guest_memory_destroy(mem);
    return 0;
}

static void state_round_trips(void **unused)
{
    (void)unused;
    struct vcpu_state in, out;
    emu_reset_state(&in, GUEST_IMAGE_BASE);
    in.gpr[X86_R13] = 0x1313;
    in.lstar = 0xffffffff81000000ULL;
    assert_int_equal(vtx_backend_ops.vcpu_set_state(vcpu, &in), 0);
    assert_int_equal(vtx_backend_ops.vcpu_get_state(vcpu, &out), 0);
    assert_int_equal(out.rip, GUEST_IMAGE_BASE);
    assert_int_equal(out.gpr[X86_R13], 0x1313);
    assert_int_equal(out.cr3, in.cr3);
    assert_int_equal(out.cs.selector, GUEST_SEL_CODE64);
    assert_int_equal(out.cs.attrib, in.cs.attrib);
    assert_int_equal(out.gdtr.base, in.gdtr.base);
    assert_int_equal(out.lstar, in.lstar);
}

static void dirty_log_reports_written_pages(void **unused)
{
    (void)unused;
    /* mov byte [0x40300000], 1; mov byte [0x40305000], 1; hlt */
    static const uint8_t code[] = {0xc6, 0x04, 0x25, 0x00, 0x00, 0x30, 0x40, 0x01, 0xc6,
                                   0x04, 0x25, 0x00, 0x50, 0x30, 0x40, 0x01, 0xf4};
    memcpy(guest_ram_ptr(mem, GUEST_IMAGE_BASE, sizeof(code)), code, sizeof(code));
    struct vcpu_state st;
    emu_reset_state(&st, GUEST_IMAGE_BASE);
    assert_int_equal(vtx_backend_ops.vcpu_set_state(vcpu, &st), 0);
    assert_int_equal(vtx_backend_ops.vm_enable_dirty_log(vm, true), 0);
    size_t words = GUEST_RAM_SIZE / 4096 / 64;
    uint64_t *bitmap = calloc(words, sizeof(uint64_t));
    assert_int_equal(vtx_backend_ops.vm_get_dirty_log(vm, bitmap, words), 0); /* reset */
    struct vm_exit *exit = calloc(1, sizeof(*exit));
    assert_int_equal(vtx_backend_ops.vcpu_run(vcpu, exit), 0);
    assert_int_equal(exit->reason, VM_EXIT_HLT);
    memset(bitmap, 0, words * sizeof(uint64_t));
    assert_int_equal(vtx_backend_ops.vm_get_dirty_log(vm, bitmap, words), 0);
    size_t p1 = (0x40300000 - GUEST_RAM_BASE) / 4096, p2 = (0x40305000 - GUEST_RAM_BASE) / 4096;
    assert_true(bitmap[p1 / 64] >> (p1 % 64) & 1);
    assert_true(bitmap[p2 / 64] >> (p2 % 64) & 1);
    assert_false(bitmap[(p1 + 1) / 64] >> ((p1 + 1) % 64) & 1);
    assert_int_equal(
        guest_ram_ptr(mem, 0x40305000, 1) ? *(uint8_t *)guest_ram_ptr(mem, 0x40305000, 1) : 0, 1);
    /* read again: the log was reset by the first read */
    memset(bitmap, 0, words * sizeof(uint64_t));
    assert_int_equal(vtx_backend_ops.vm_get_dirty_log(vm, bitmap, words), 0);
    assert_false(bitmap[p1 / 64] >> (p1 % 64) & 1);
    free(exit);
    free(bitmap);
}

int main(void)
{
    char reason[200];
    if (vtx_backend_ops.probe(reason, sizeof(reason)) < 0) {
        printf("SKIPPED: vtx unavailable: %s\n", reason);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_round_trips),
        cmocka_unit_test(dirty_log_reports_written_pages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
