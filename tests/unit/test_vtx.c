/* test_vtx.c - the vtx backend against a real /dev/kvm, through its ops table only (no VMM):
 * the state round-trips through KVM's register structures; OUT, IN (data handed back), REP
 * OUTSB, MMIO read (data handed back) and write and HLT become the right exit records; a
 * guest spinning forever comes back with VM_EXIT_INTR when VMLAB_SIG_KICK hits its thread;
 * the kick handler is restored at vcpu_destroy; KVM's binary stats count the exits; the dirty
 * log reports exactly the pages a guest wrote. Exits 77 (ctest SKIP) where /dev/kvm is absent:
 * never PASS and never FAIL without KVM. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
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
    in.sysenter_eip = 0x40201000;
    in.tsc_aux = 7;
    in.kernel_gs_base = 0x40300000;
    in.dr[0] = 0x40200010;
    in.xcr0 = 1; /* x87 only: valid whatever the virtual CPUID says about XSAVE */
    assert_int_equal(vtx_backend_ops.vcpu_set_state(vcpu, &in), 0);
    assert_int_equal(vtx_backend_ops.vcpu_get_state(vcpu, &out), 0);
    assert_int_equal(out.rip, GUEST_IMAGE_BASE);
    assert_int_equal(out.gpr[X86_R13], 0x1313);
    assert_int_equal(out.cr3, in.cr3);
    assert_int_equal(out.cs.selector, GUEST_SEL_CODE64);
    assert_int_equal(out.cs.attrib, in.cs.attrib);
    assert_int_equal(out.gdtr.base, in.gdtr.base);
    assert_int_equal(out.lstar, in.lstar);
    assert_int_equal(out.sysenter_eip, in.sysenter_eip);
    assert_int_equal(out.tsc_aux, in.tsc_aux);
    assert_int_equal(out.kernel_gs_base, in.kernel_gs_base);
    assert_int_equal(out.dr[0], in.dr[0]);
    assert_int_equal(out.xcr0, in.xcr0);
    assert_int_equal(out.efer, in.efer);
    assert_int_equal(out.ss.attrib, in.ss.attrib);
    assert_int_equal(out.tr.attrib, in.tr.attrib);
    assert_int_equal(out.tr.base, in.tr.base);
}

static void run_code(const uint8_t *code, size_t size)
{
    memcpy(guest_ram_ptr(mem, GUEST_IMAGE_BASE, size), code, size);
    struct vcpu_state st;
    emu_reset_state(&st, GUEST_IMAGE_BASE);
    assert_int_equal(vtx_backend_ops.vcpu_set_state(vcpu, &st), 0);
}

static void io_mmio_and_hlt_exits(void **unused)
{
    (void)unused;
    static const uint8_t code[] = {
        0xb0, 0x41,                               /* mov al, 'A' */
        0xe6, 0xe9,                               /* out 0xe9, al */
        0xe4, 0x60,                               /* in al, 0x60 */
        0xe6, 0xe9,                               /* out 0xe9, al */
        0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x44, /* mov eax, [0x44000000] */
        0xe6, 0xe9,                               /* out 0xe9, al */
        0xc7, 0x04, 0x25, 0x04, 0x00, 0x00, 0x44, /* mov dword [0x44000004], */
        0x78, 0x56, 0x34, 0x12,                   /*   0x12345678 */
        0x48, 0x8d, 0x35, 0x0d, 0x00, 0x00, 0x00, /* lea rsi, [rip + msg] */
        0xb9, 0x03, 0x00, 0x00, 0x00,             /* mov ecx, 3 */
        0xba, 0xe9, 0x00, 0x00, 0x00,             /* mov edx, 0xe9 */
        0xf3, 0x6e,                               /* rep outsb */
        0xf4,                                     /* hlt */
        'x',  'y',  'z',                          /* msg */
    };
    _Static_assert(GUEST_MMIO_BASE == 0x44000000, "the code above addresses the MMIO window");
    run_code(code, sizeof(code));
    struct vm_exit *exit = calloc(1, sizeof(*exit));

    assert_int_equal(vtx_backend_ops.vcpu_run(vcpu, exit), 0);
    assert_int_equal(exit->reason, VM_EXIT_IO);
    assert_int_equal(exit->io.direction, VM_IO_OUT);
    assert_int_equal(exit->io.port, PORT_CONSOLE);
    assert_int_equal(exit->io.size, 1);
    assert_int_equal(exit->io.count, 1);
    assert_int_equal(exit->io.data[0], 'A');

    assert_int_equal(vtx_backend_ops.vcpu_run(vcpu, exit), 0);
    assert_int_equal(exit->reason, VM_EXIT_IO);
    assert_int_equal(exit->io.direction, VM_IO_IN);
    assert_int_equal(exit->io.port, 0x60);
    exit->io.data[0] = 0x5a; /* the VMM's answer, handed to KVM by the next run */
    assert_int_equal(vtx_backend_ops.vcpu_run(vcpu, exit), 0);
    assert_int_equal(exit->reason, VM_EXIT_IO);
    assert_int_equal(exit->io.data[0], 0x5a);

    assert_int_equal(vtx_backend_ops.vcpu_run(vcpu, exit), 0);
    assert_int_equal(exit->reason, VM_EXIT_MMIO);
    assert_int_equal(exit->mmio.gpa, GUEST_MMIO_BASE);
    assert_int_equal(exit->mmio.len, 4);
    assert_false(exit->mmio.is_write);
    assert_int_equal(exit->rip, GUEST_IMAGE_BASE + 8);
    memcpy(exit->mmio.data, "\x77\x66\x55\x44", 4);
    assert_int_equal(vtx_backend_ops.vcpu_run(vcpu, exit), 0);
    assert_int_equal(exit->reason, VM_EXIT_IO);
    assert_int_equal(exit->io.data[0], 0x77);

    assert_int_equal(vtx_backend_ops.vcpu_run(vcpu, exit), 0);
    assert_int_equal(exit->reason, VM_EXIT_MMIO);
    assert_int_equal(exit->mmio.gpa, GUEST_MMIO_BASE + 4);
    assert_true(exit->mmio.is_write);
    assert_int_equal(exit->mmio.len, 4);
    assert_memory_equal(exit->mmio.data, "\x78\x56\x34\x12", 4);

    /* REP OUTSB: KVM may split the string, never lose or reorder it. */
    char out[4] = {0};
    size_t got = 0;
    while (got < 3) {
        assert_int_equal(vtx_backend_ops.vcpu_run(vcpu, exit), 0);
        assert_int_equal(exit->reason, VM_EXIT_IO);
        assert_int_equal(exit->io.port, PORT_CONSOLE);
        assert_in_range(exit->io.count, 1, 3 - got);
        memcpy(out + got, exit->io.data, exit->io.count);
        got += exit->io.count;
    }
    assert_string_equal(out, "xyz");

    assert_int_equal(vtx_backend_ops.vcpu_run(vcpu, exit), 0);
    assert_int_equal(exit->reason, VM_EXIT_HLT);
    assert_false(exit->hlt.interrupts_enabled);
    assert_int_equal(exit->rip, GUEST_IMAGE_BASE + sizeof(code) - 3); /* past the HLT */
    free(exit);
}

static volatile int kicker_stop;

static void *kicker(void *arg)
{
    pthread_t target = *(pthread_t *)arg;
    struct timespec ms20 = {0, 20 * 1000 * 1000};
    /* Keep kicking until the run comes back: one kick is enough, the loop only guards the
     * test against a lost signal turning into a hang. */
    for (int i = 0; i < 250 && !kicker_stop; i++) {
        nanosleep(&ms20, NULL);
        pthread_kill(target, VMLAB_SIG_KICK);
    }
    return NULL;
}

static void kick_ends_endless_loop(void **unused)
{
    (void)unused;
    static const uint8_t code[] = {0xeb, 0xfe}; /* jmp $ */
    run_code(code, sizeof(code));
    struct vm_exit *exit = calloc(1, sizeof(*exit));
    pthread_t self = pthread_self(), thread;
    kicker_stop = 0;
    vcpu->kick_pending = 0;
    assert_int_equal(pthread_create(&thread, NULL, kicker, &self), 0);
    int rc = vtx_backend_ops.vcpu_run(vcpu, exit);
    kicker_stop = 1;
    pthread_join(thread, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(exit->reason, VM_EXIT_INTR);
    assert_true(vcpu->kick_pending);
    /* Kicked before KVM_RUN (kick_pending still set): immediate_exit returns at once. */
    assert_int_equal(vtx_backend_ops.vcpu_run(vcpu, exit), 0);
    assert_int_equal(exit->reason, VM_EXIT_INTR);
    vcpu->kick_pending = 0;
    free(exit);
}

struct stat_seen {
    uint64_t exits, io_exits, halt_exits;
};

static void stat_collect(void *ctx, const char *name, uint64_t value, const char *unit)
{
    (void)unit;
    struct stat_seen *seen = ctx;
    if (strcmp(name, "kvm.exits") == 0)
        seen->exits = value;
    else if (strcmp(name, "kvm.io_exits") == 0)
        seen->io_exits = value;
    else if (strcmp(name, "kvm.halt_exits") == 0)
        seen->halt_exits = value;
}

static void binary_stats_count_exits(void **unused)
{
    (void)unused;
    struct stat_seen seen = {0};
    int rc = vtx_backend_ops.vcpu_stats(vcpu, stat_collect, &seen);
    if (rc == -EOPNOTSUPP)
        skip(); /* a kernel before 5.14 has no KVM_GET_STATS_FD */
    assert_int_equal(rc, 0);
    /* io_mmio_and_hlt_exits took this vCPU through at least 8 exits to user space (OUTs, IN,
     * MMIO read and write, string I/O, HLT); each is a KVM exit. */
    assert_true(seen.exits >= 8);
    /* PVM (kvm_pvm) emulates I/O and HLT without VMX/SVM exits and leaves these at zero. */
    if (!vtx_backend_ops.host_has("kvm_pvm")) {
        assert_true(seen.io_exits >= 3);
        assert_true(seen.halt_exits >= 1);
    }
}

static void kick_handler_restored(void **unused)
{
    (void)unused;
    struct sigaction before, during, after;
    assert_int_equal(sigaction(VMLAB_SIG_KICK, NULL, &before), 0);
    struct vm *vm2;
    struct vcpu *vcpu2;
    struct vm_config config = {.mem = mem};
    assert_int_equal(vtx_backend_ops.vm_create(&config, &vm2), 0);
    assert_int_equal(vtx_backend_ops.vcpu_create(vm2, &vcpu2), 0);
    assert_int_equal(sigaction(VMLAB_SIG_KICK, NULL, &during), 0);
    assert_true(during.sa_flags & SA_SIGINFO);
    vtx_backend_ops.vcpu_destroy(vcpu2);
    vtx_backend_ops.vm_destroy(vm2);
    assert_int_equal(sigaction(VMLAB_SIG_KICK, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, before.sa_handler);
}

static void probe_clears_reason(void **unused)
{
    (void)unused;
    char reason[64];
    memset(reason, 'x', sizeof(reason));
    assert_int_equal(vtx_backend_ops.probe(reason, sizeof(reason)), 0);
    assert_string_equal(reason, "");
    assert_false(vtx_backend_ops.host_has("cpuid_faulting"));
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
        cmocka_unit_test(probe_clears_reason),
        cmocka_unit_test(state_round_trips),
        cmocka_unit_test(io_mmio_and_hlt_exits),
        cmocka_unit_test(kick_ends_endless_loop),
        cmocka_unit_test(binary_stats_count_exits),
        cmocka_unit_test(kick_handler_restored),
        cmocka_unit_test(dirty_log_reports_written_pages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
