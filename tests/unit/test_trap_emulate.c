/* test_trap_emulate.c - the trap_emulate backend through its ops table, on small fragments.
 *
 * Like test_dbt_backend.c: each test creates its vCPU inside the test, so that the backend's
 * signal handlers sit over cmocka's (kept as the "previous" action for host faults).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backends/trap_emulate/trap_emulate.h"
#include "emu/emu.h"
#include "vmm/backend.h"
#include "vmm/guest_layout.h"
#include "vmm/kick.h"
#include "vmm/platform.h"

/* clang-format off */
#define FRAGMENT(name, text)                                                                       \
    __asm__(".pushsection .rodata\n" #name "_start:\n" text "\n" #name "_end:\n.popsection\n");     \
    extern const uint8_t name##_start[], name##_end[];
FRAGMENT(f_out, "mov $0x42, %eax\n out %al, $0xf4\n")
/* ymm0 from (%rbx), exit, ymm0 to (%rbx + 32), exit. */
FRAGMENT(f_ymm, "vmovdqu (%rbx), %ymm0\n out %al, $0x80\n vmovdqu %ymm0, 32(%rbx)\n out %al, $0xf4\n")
/* zmm31 and k7 the same way (AVX-512). */
FRAGMENT(f_zmm, "vmovdqu64 (%rbx), %zmm31\n kmovq %rcx, %k7\n out %al, $0x80\n"
                " vmovdqu64 %zmm31, 64(%rbx)\n kmovq %k7, %rdx\n out %al, $0xf4\n")
/* RDTSC twice (EDX:EAX into R8 and R9), then exit. */
FRAGMENT(f_rdtsc, "rdtsc\n shl $32, %rdx\n or %rdx, %rax\n mov %rax, %r8\n"
                  " mov $-1, %rax\n mov $-1, %rdx\n rdtsc\n mov %rax, %r9\n mov %rdx, %r10\n"
                  " out %al, $0xf4\n")
/* clang-format on */

struct run {
    struct guest_memory *mem;
    struct vm *vm;
    struct vcpu *vcpu;
    struct vm_exit exit;
    struct vcpu_state st;
};

static void start(struct run *r, const uint8_t *start, const uint8_t *end)
{
    memset(r, 0, sizeof(*r));
    char reason[200];
    if (trap_emulate_backend_ops.probe(reason, sizeof(reason)) < 0)
        skip();
    assert_int_equal(guest_memory_create(trap_emulate_backend_ops.memory_flags, &r->mem), 0);
    platform_setup(r->mem);
    memcpy(guest_ram_ptr(r->mem, GUEST_IMAGE_BASE, (uint64_t)(end - start)), start,
           (size_t)(end - start));
    struct vm_config config = {.mem = r->mem, .trap_cpuid = true, .trap_rdtsc = true};
    assert_int_equal(trap_emulate_backend_ops.vm_create(&config, &r->vm), 0);
    assert_int_equal(trap_emulate_backend_ops.vcpu_create(r->vm, &r->vcpu), 0);
    emu_reset_state(&r->st, GUEST_IMAGE_BASE);
    assert_int_equal(trap_emulate_backend_ops.vcpu_set_state(r->vcpu, &r->st), 0);
}

static void finish(struct run *r)
{
    trap_emulate_backend_ops.vcpu_destroy(r->vcpu);
    trap_emulate_backend_ops.vm_destroy(r->vm);
    guest_memory_destroy(r->mem);
}

/* A kick that lands in host code while the vCPU counts as "in the guest" (trap_vcpu_run used
 * to set in_guest a few instructions before its call to the entry code) must not be taken for
 * a guest kick: "leaving the guest" would resume host code at the exit landing on the stale
 * host stack of the previous entry, and the process would crash (issue 10, found by the
 * chaos test: seed 1, guest 376). */
static void kick_in_host_code_is_not_a_guest_kick(void **state)
{
    (void)state;
    struct run r;
    start(&r, f_out_start, f_out_end);
    assert_int_equal(trap_emulate_backend_ops.vcpu_run(r.vcpu, &r.exit), 0);
    assert_int_equal(r.exit.reason, VM_EXIT_IO); /* one real entry: host_rsp is now stale */
    struct trap_vcpu *v = (struct trap_vcpu *)r.vcpu;
    r.vcpu->kick_pending = 0;
    v->in_guest = 1;
    raise(VMLAB_SIG_KICK); /* delivered here, in host code */
    v->in_guest = 0;
    assert_int_equal(r.vcpu->kick_pending, 1); /* noted for the next vcpu_run, nothing else */
    finish(&r);
}

#define DATA (GUEST_RAM_BASE + 0x300000)

/* Host code that uses the vector registers (all caller-saved in the SysV ABI). */
__asm__(".text\n"
        "host_clobber_avx: vpcmpeqb %ymm0, %ymm0, %ymm0\n ret\n"
        "host_clobber_avx512: vpternlogd $0xff, %zmm31, %zmm31, %zmm31\n"
        " kxnorq %k7, %k7, %k7\n ret\n");
void host_clobber_avx(void);
void host_clobber_avx512(void);

/* The guest's whole vector registers survive an exit during which host code uses the same
 * registers (glibc's AVX2 memcpy does, and ends with VZEROUPPER): trap_emulate used to keep
 * only the FXSAVE image, so the upper halves were whatever host code left (issue 10). */
static void ymm_survives_an_exit(void **state)
{
    (void)state;
    if (!__builtin_cpu_supports("avx"))
        skip();
    struct run r;
    start(&r, f_ymm_start, f_ymm_end);
    uint8_t *data = guest_ram_ptr(r.mem, DATA, 64);
    for (unsigned i = 0; i < 32; i++)
        data[i] = (uint8_t)(0xA0 + i);
    r.st.gpr[X86_RBX] = DATA;
    assert_int_equal(trap_emulate_backend_ops.vcpu_set_state(r.vcpu, &r.st), 0);
    assert_int_equal(trap_emulate_backend_ops.vcpu_run(r.vcpu, &r.exit), 0);
    assert_int_equal(r.exit.reason, VM_EXIT_IO);
    host_clobber_avx(); /* host code: ymm0 all ones */
    assert_int_equal(trap_emulate_backend_ops.vcpu_run(r.vcpu, &r.exit), 0);
    assert_int_equal(r.exit.reason, VM_EXIT_IO);
    assert_int_equal(r.exit.io.port, 0xF4);
    assert_memory_equal(data + 32, data, 32);
    finish(&r);
}

static void zmm_and_opmask_survive_an_exit(void **state)
{
    (void)state;
    if (!__builtin_cpu_supports("avx512f"))
        skip();
    struct run r;
    start(&r, f_zmm_start, f_zmm_end);
    uint8_t *data = guest_ram_ptr(r.mem, DATA, 128);
    for (unsigned i = 0; i < 64; i++)
        data[i] = (uint8_t)(0x40 + 3 * i);
    r.st.gpr[X86_RBX] = DATA;
    r.st.gpr[X86_RCX] = 0x8badf00ddeadbeefULL;
    assert_int_equal(trap_emulate_backend_ops.vcpu_set_state(r.vcpu, &r.st), 0);
    assert_int_equal(trap_emulate_backend_ops.vcpu_run(r.vcpu, &r.exit), 0);
    assert_int_equal(r.exit.reason, VM_EXIT_IO);
    host_clobber_avx512();
    assert_int_equal(trap_emulate_backend_ops.vcpu_run(r.vcpu, &r.exit), 0);
    assert_int_equal(r.exit.io.port, 0xF4);
    assert_memory_equal(data + 64, data, 64);
    assert_int_equal(trap_emulate_backend_ops.vcpu_get_state(r.vcpu, &r.st), 0);
    assert_int_equal(r.st.gpr[X86_RDX], 0x8badf00ddeadbeefULL);
    finish(&r);
}

/* RDTSC in the signal entry's fast path (trap_entry.S): the guest's virtual TSC (the host's
 * CLOCK_MONOTONIC + the guest's TSC offset) in EDX:EAX, upper halves zero, counted, RIP past
 * it - with the fast path, as without it. */
static void rdtsc_fast_path_gives_the_virtual_tsc(bool fast)
{
    struct run r;
    setenv("VMLAB_TRAP", fast ? "fast_path=on" : "fast_path=off", 1);
    start(&r, f_rdtsc_start, f_rdtsc_end);
    unsetenv("VMLAB_TRAP");
    struct trap_vcpu *v = (struct trap_vcpu *)r.vcpu;
    if (!v->want_rdtsc_faulting) {
        finish(&r);
        skip(); /* RDTSC does not trap on this host: nothing to emulate */
    }
    const uint64_t base = 0x7777000000000000ULL;
    r.st.tsc_offset = (int64_t)(base - emu_time_ns());
    assert_int_equal(trap_emulate_backend_ops.vcpu_set_state(r.vcpu, &r.st), 0);
    assert_int_equal(trap_emulate_backend_ops.vcpu_run(r.vcpu, &r.exit), 0);
    assert_int_equal(r.exit.reason, VM_EXIT_IO);
    assert_int_equal(r.exit.io.port, 0xF4);
    uint64_t now = emu_time_ns() + (uint64_t)r.st.tsc_offset;
    assert_int_equal(trap_emulate_backend_ops.vcpu_get_state(r.vcpu, &r.st), 0);
    uint64_t first = r.st.gpr[X86_R8];
    uint64_t second = r.st.gpr[X86_R9] | r.st.gpr[X86_R10] << 32;
    assert_true(r.st.gpr[X86_R9] >> 32 == 0 && r.st.gpr[X86_R10] >> 32 == 0);
    assert_true(first >= base && first <= second && second <= now);
    assert_true(now - first < 1000000000ULL); /* within the second the run took */
    assert_int_equal(v->common.stats.emulated[EMU_CLASS_RDTSC], 2);
    const struct trap_altstack_header *h = (const struct trap_altstack_header *)v->altstack;
    assert_int_equal(h->fast_traps, fast ? 2 : 0);
    finish(&r);
}

static void rdtsc_fast_path(void **state)
{
    (void)state;
    rdtsc_fast_path_gives_the_virtual_tsc(true);
}

static void rdtsc_general_path(void **state)
{
    (void)state;
    rdtsc_fast_path_gives_the_virtual_tsc(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kick_in_host_code_is_not_a_guest_kick),
        cmocka_unit_test(ymm_survives_an_exit),
        cmocka_unit_test(zmm_and_opmask_survive_an_exit),
        cmocka_unit_test(rdtsc_fast_path),
        cmocka_unit_test(rdtsc_general_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
