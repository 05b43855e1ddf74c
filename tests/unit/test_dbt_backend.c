/* test_dbt_backend.c - the dbt backend through its ops table, on small guest fragments.
 *
 * Each fragment is assembled into .rodata of this test (position independent: only relative
 * branches), copied to GUEST_IMAGE_BASE and run until its final `out %al, $0xf4`. What is
 * checked is what a guest could observe (registers, flags, memory, exits) plus the counters
 * that prove which mechanism ran (inline, callout, chaining, lookup hits, invalidations).
 *
 * These run in the test process although cmocka installs its own SIGSEGV/SIGILL handlers per
 * test: each test creates its vCPU inside the test, and vcpu_create installs the dbt handlers
 * over cmocka's (keeping them as the "previous" action for faults that are not the guest's).
 */
#define _GNU_SOURCE
#include <asm/processor-flags.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <cmocka.h>

#include "backends/dbt/dbt.h" /* DBT_MAX_BLOCKS */
#include "bench/bench.h"      /* the compute kernel blob */
#include "emu/emu.h"
#include "vmm/backend.h"
#include "vmm/guest_layout.h"
#include "vmm/kick.h"
#include "vmm/platform.h"

#define CODE GUEST_IMAGE_BASE
#define DATA (GUEST_RAM_BASE + 0x300000)

/* clang-format off */
#define FRAGMENT(name, text)                                                                       \
    __asm__(".pushsection .rodata\n" #name "_start:\n" text "\n" #name "_end:\n.popsection\n");     \
    extern const uint8_t name##_start[], name##_end[];

/* CLI and STI must not touch the arithmetic flags (SDM vol. 2A CLI: only IF is affected). */
FRAGMENT(f_cli_flags,
    "xor %eax, %eax\n stc\n cli\n sti\n cli\n pushfq\n pop %rbx\n out %al, $0xf4\n")
/* POPF: the virtual IF and every arithmetic flag from the image; PUSHF shows them back. */
FRAGMENT(f_popf,
    "push $0xad5\n popfq\n pushfq\n pop %rbx\n push $0x2\n popfq\n pushfq\n pop %rcx\n"
    "push $0x8d5\n popfq\n out %al, $0xf4\n")
/* POPF of an image with DF set takes the slow path; DF must come through. */
FRAGMENT(f_popf_df,
    "push $0x402\n popfq\n pushfq\n pop %rbx\n cld\n out %al, $0xf4\n")
/* A counted loop: chained direct branches, no exits per iteration. */
FRAGMENT(f_loop,
    "mov $100000, %ecx\n xor %eax, %eax\n1: add %rcx, %rax\n dec %ecx\n jnz 1b\n out %al, $0xf4\n")
/* Calls and returns: the inline lookup must hit. */
FRAGMENT(f_calls,
    "mov $1000, %ecx\n xor %eax, %eax\n1: call 2f\n dec %ecx\n jnz 1b\n out %al, $0xf4\n"
    "2: inc %rax\n ret\n")
/* A callout that falls through (CPUID) must not end the block or lose registers. */
FRAGMENT(f_cpuid,
    "mov $0x1234, %r12\n xor %eax, %eax\n xor %ecx, %ecx\n cpuid\n mov %r12, %r13\n out %al, $0xf4\n")
/* Self-modifying code: run `mov $1, %eax`, patch its immediate, run it again. */
FRAGMENT(f_smc,
    "xor %ebx, %ebx\n mov $2, %ecx\n1: call 2f\n add %eax, %ebx\n movl $5, 3f+1(%rip)\n dec %ecx\n"
    " jnz 1b\n out %al, $0xf4\n2: nop\n3: mov $1, %eax\n ret\n")
/* SMC behind a chained jump: the caller (page 0) is chained to the callee (page 1) before the
 * callee is patched; only unchaining the caller's stub makes the third call run the new code.
 * RBX = 1 (first call) + 1 (second, before the patch) + 5 (third). */
FRAGMENT(f_smc_chained,
    "xor %ebx, %ebx\n mov $3, %ecx\n1: call 2f\n add %eax, %ebx\n cmp $2, %ecx\n jne 4f\n"
    " movl $5, 3f+1(%rip)\n4: dec %ecx\n jnz 1b\n out %al, $0xf4\n .fill 4096, 1, 0xcc\n"
    "2: nop\n3: mov $1, %eax\n ret\n")
/* The same through a taken Jcc, which chaining points straight at the callee's block: the
 * unchaining must point the Jcc back at its exit stub. */
FRAGMENT(f_smc_jcc,
    "xor %ebx, %ebx\n mov $3, %ecx\n1: xor %eax, %eax\n test %ecx, %ecx\n jnz 2f\n"
    "5: add %eax, %ebx\n cmp $2, %ecx\n jne 4f\n movl $5, 3f+1(%rip)\n4: dec %ecx\n jnz 1b\n"
    " out %al, $0xf4\n .fill 4096, 1, 0xcc\n2: nop\n3: mov $1, %eax\n jmp 5b\n")
/* #DE in translated code: delivered at the exact guest RIP with the guest's registers. */
FRAGMENT(f_div0,
    "mov $7, %eax\n xor %ecx, %ecx\n mov $0x55, %r9\n div %ecx\n out %al, $0xf4\n")
/* Forever, chained to itself, and forever through returns. */
FRAGMENT(f_spin, "1: jmp 1b\n")
/* Forever through a taken Jcc, which chaining points straight at its own block. */
FRAGMENT(f_spin_jcc, "xor %ebx, %ebx\n1: inc %rax\n add %rax, %rcx\n test %ebx, %ebx\n jz 1b\n")
FRAGMENT(f_spin_long,
    "1: inc %rax\n add %rax, %rbx\n imul %rbx, %rcx\n xor %rcx, %rdx\n call 2f\n jmp 1b\n"
    "2: ret\n")
/* STI with the VMM waiting for a window: the next instruction runs (shadow), then it exits. */
FRAGMENT(f_window, "sti\n inc %eax\n inc %ebx\n out %al, $0xf4\n")
/* Undecodable bytes (PUSH ES does not exist in 64-bit mode): #UD at their RIP, from the
 * dispatcher; UD2 decodes, runs natively and faults: #UD from SIGILL. */
FRAGMENT(f_bad, "nop\n .byte 0x06\n out %al, $0xf4\n")
FRAGMENT(f_ud2, "nop\n nop\n ud2\n out %al, $0xf4\n")
/* RIP-relative load and store. */
FRAGMENT(f_riprel,
    "mov 1f(%rip), %rax\n addq $1, 1f(%rip)\n mov 1f(%rip), %rbx\n out %al, $0xf4\n"
    ".balign 8\n1: .quad 0x1122334455667788\n")
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
    assert_int_equal(guest_memory_create(dbt_backend_ops.memory_flags, &r->mem), 0);
    platform_setup(r->mem);
    memcpy(guest_ram_ptr(r->mem, CODE, (uint64_t)(end - start)), start, (size_t)(end - start));
    struct vm_config config = {.mem = r->mem};
    assert_int_equal(dbt_backend_ops.vm_create(&config, &r->vm), 0);
    assert_int_equal(dbt_backend_ops.vcpu_create(r->vm, &r->vcpu), 0);
    emu_reset_state(&r->st, CODE);
    assert_int_equal(dbt_backend_ops.vcpu_set_state(r->vcpu, &r->st), 0);
}

/* Run, ignoring kicks, until an exit other than INTR; the state lands in r->st. */
static uint32_t go(struct run *r)
{
    do {
        r->vcpu->kick_pending = 0;
        assert_int_equal(dbt_backend_ops.vcpu_run(r->vcpu, &r->exit), 0);
    } while (r->exit.reason == VM_EXIT_INTR);
    dbt_backend_ops.vcpu_get_state(r->vcpu, &r->st);
    return r->exit.reason;
}

static bool final_out(const struct run *r)
{
    return r->exit.reason == VM_EXIT_IO && r->exit.io.port == PORT_EXIT;
}

struct stat_find {
    const char *name;
    uint64_t value;
};
static void stat_emit(void *ctx, const char *name, uint64_t value, const char *unit)
{
    (void)unit;
    struct stat_find *f = ctx;
    if (!strcmp(name, f->name))
        f->value = value;
}
static uint64_t stat(struct run *r, const char *name)
{
    struct stat_find f = {name, ~0ULL};
    dbt_backend_ops.vcpu_stats(r->vcpu, stat_emit, &f);
    assert_true(f.value != ~0ULL);
    return f.value;
}

static void stop(struct run *r)
{
    dbt_backend_ops.vcpu_destroy(r->vcpu);
    dbt_backend_ops.vm_destroy(r->vm);
    guest_memory_destroy(r->mem);
}

#define ARITH                                                                                      \
    (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_OF)

static void test_cli_sti_keep_flags(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_cli_flags_start, f_cli_flags_end);
    go(&r);
    assert_true(final_out(&r));
    uint64_t f = r.st.gpr[X86_RBX];
    assert_int_equal(f & ARITH, X86_EFLAGS_CF | X86_EFLAGS_ZF | X86_EFLAGS_PF);
    assert_int_equal(f & X86_EFLAGS_IF, 0); /* PUSHF shows the virtual IF (cleared) */
    assert_int_equal(r.st.rflags & X86_EFLAGS_IF, 0);
    assert_int_equal(stat(&r, "inline_sensitive"), 4);
    assert_int_equal(stat(&r, "callouts"), 1); /* only the final OUT */
    stop(&r);
}

static void test_popf_virtual_if(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_popf_start, f_popf_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX] & (ARITH | X86_EFLAGS_IF | X86_EFLAGS_IOPL), 0xad5);
    assert_int_equal(r.st.gpr[X86_RCX] & (ARITH | X86_EFLAGS_IF), 0);
    assert_int_equal(r.st.rflags & (ARITH | X86_EFLAGS_IF), 0x8d5); /* last POPF: IF = 0 */
    stop(&r);
}

static void test_popf_slow_path(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_popf_df_start, f_popf_df_end);
    go(&r);
    assert_true(final_out(&r));
    assert_true(r.st.gpr[X86_RBX] & X86_EFLAGS_DF);
    assert_false(r.st.rflags & X86_EFLAGS_DF);
    stop(&r);
}

static void test_loop_is_chained(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_loop_start, f_loop_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], 100000ULL * 100001 / 2);
    assert_true(stat(&r, "chained_jumps") >= 1);
    assert_true(stat(&r, "block_exits") < 10); /* not one per iteration */
    stop(&r);
}

static void test_returns_hit_lookup(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_calls_start, f_calls_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], 1000);
    assert_int_equal(r.st.gpr[X86_RSP], GUEST_STACK_TOP);
    assert_true(stat(&r, "indirect_hits") >= 990);
    assert_int_equal(stat(&r, "indirect_lookups"), 1000);
    stop(&r);
}

static void test_callout_falls_through(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_cpuid_start, f_cpuid_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_R13], 0x1234);
    assert_memory_equal(&r.st.gpr[X86_RBX], "vmla", 4); /* EMU_CPUID_VENDOR in EBX:EDX:ECX */
    assert_int_equal(stat(&r, "blocks_translated"), 1);
    assert_int_equal(stat(&r, "callouts"), 2);
    stop(&r);
}

static void test_self_modifying_code(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_smc_start, f_smc_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 1 + 5);
    assert_true(stat(&r, "invalidations") >= 1);
    assert_true(stat(&r, "invalidated_blocks") >= 1);
    /* the store is on the page it writes: it re-executes alone, unprotected (else: no end) */
    assert_true(stat(&r, "smc_reexecutions") >= 1);
    /* the CALL into the patched block was chained: only unchaining makes the new code run,
     * which RBX = 1 + 5 above shows */
    assert_true(stat(&r, "chained_jumps") >= 1);
    stop(&r);
}

static void test_self_modifying_code_unchains(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_smc_chained_start, f_smc_chained_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 1 + 1 + 5);
    assert_int_equal(stat(&r, "invalidations"), 1);    /* only the callee's page */
    assert_int_equal(stat(&r, "smc_reexecutions"), 0); /* the store is on the other page */
    stop(&r);
}

static void test_self_modifying_code_unlinks_jcc(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_smc_jcc_start, f_smc_jcc_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RBX], 1 + 1 + 5);
    assert_int_equal(stat(&r, "invalidations"), 1);
    stop(&r);
}

/* The platform stub reports the frame address; the frame is [cr2, rax, vector, error, rip]. */
static void exception_frame(struct run *r, uint64_t frame[5])
{
    assert_int_equal(r->exit.reason, VM_EXIT_IO);
    assert_int_equal(r->exit.io.port, PORT_EXC_REPORT);
    uint32_t at;
    memcpy(&at, r->exit.io.data, 4);
    assert_int_equal(guest_ram_read(r->mem, at, frame, 40), 0);
}

static void test_divide_error_exact(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_div0_start, f_div0_end);
    go(&r);
    uint64_t fr[5];
    exception_frame(&r, fr);
    assert_int_equal(fr[2], 0);                /* #DE */
    assert_int_equal(fr[4], CODE + 5 + 2 + 7); /* the DIV itself */
    assert_int_equal(fr[1], 7);                /* RAX as the hardware leaves it */
    assert_int_equal(r.st.gpr[X86_R9], 0x55);
    stop(&r);
}

static void test_undecodable_is_ud(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_bad_start, f_bad_end);
    go(&r);
    uint64_t fr[5];
    exception_frame(&r, fr);
    assert_int_equal(fr[2], 6);
    assert_int_equal(fr[4], CODE + 1);
    stop(&r);
}

static void test_ud2_is_ud(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_ud2_start, f_ud2_end);
    go(&r);
    uint64_t fr[5];
    exception_frame(&r, fr);
    assert_int_equal(fr[2], 6);
    assert_int_equal(fr[4], CODE + 2);
    stop(&r);
}

static void test_rip_relative(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_riprel_start, f_riprel_end);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], 0x1122334455667788ULL);
    assert_int_equal(r.st.gpr[X86_RBX], 0x1122334455667789ULL);
    stop(&r);
}

/* More blocks than the cache holds (DBT_MAX_BLOCKS): the cache flushes and the guest goes on.
 * The code is generated here: twice through N blocks of `inc rax; jmp next`. */
static void test_cache_fills_and_flushes(void **unused)
{
    (void)unused;
    enum { N = DBT_MAX_BLOCKS + 4096 };
    static const uint8_t head[] = {0xb9, 0x02, 0x00, 0x00, 0x00};  /* mov ecx, 2 */
    static const uint8_t block[] = {0x48, 0xff, 0xc0, 0xeb, 0x00}; /* inc rax; jmp .+2 */
    static const uint8_t tail[] = {0xff, 0xc9, 0x0f, 0x85};        /* dec ecx; jnz rel32 */
    size_t size = sizeof(head) + (size_t)N * sizeof(block) + sizeof(tail) + 4 + 2;
    uint8_t *code = malloc(size), *p = code;
    assert_non_null(code);
    memcpy(p, head, sizeof(head));
    p += sizeof(head);
    for (unsigned i = 0; i < N; i++, p += sizeof(block))
        memcpy(p, block, sizeof(block));
    memcpy(p, tail, sizeof(tail));
    p += sizeof(tail);
    int32_t back = -(int32_t)((size_t)(p + 4 - code) - sizeof(head));
    memcpy(p, &back, 4);
    p += 4;
    p[0] = 0xe6, p[1] = 0xf4; /* out 0xf4, al */
    struct run r;
    start(&r, code, code + size);
    free(code);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], 2ULL * N);
    assert_true(stat(&r, "cache_flushes") >= 2); /* filled once per pass */
    assert_true(stat(&r, "blocks_translated") >= 2ULL * N);
    stop(&r);
}

/* Compiled code: the benchmark's compute kernel (recursive quicksort, table-driven CRC-32
 * through RIP-relative loads, calls and returns) must give the checksum it gives natively. */
static void test_compute_kernel_matches_native(void **unused)
{
    (void)unused;
    enum { ITERATIONS = 50 };
    size_t size = 16 + bench_compute_kernel_size;
    uint8_t *code = calloc(1, size);
    assert_non_null(code);
    static const uint8_t head[] = {0xbf, ITERATIONS, 0, 0, 0, /* mov edi, ITERATIONS */
                                   0xe8, 0,          0, 0, 0, /* call kernel (patched below) */
                                   0xe6, 0xf4};               /* out 0xf4, al */
    memcpy(code, head, sizeof(head));
    code[15] = 0xcc;
    memcpy(code + 16, bench_compute_kernel, bench_compute_kernel_size);
    int32_t rel = 16 - 10; /* the call ends at 10; the kernel starts at 16 */
    memcpy(code + 6, &rel, 4);
    /* the same bytes natively */
    void *x = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(x != MAP_FAILED);
    memcpy(x, code + 16, bench_compute_kernel_size);
    assert_int_equal(mprotect(x, size, PROT_READ | PROT_EXEC), 0);
    uint64_t want = ((uint64_t(*)(uint64_t))x)(ITERATIONS);
    munmap(x, size);
    struct run r;
    start(&r, code, code + size);
    free(code);
    go(&r);
    assert_true(final_out(&r));
    assert_int_equal(r.st.gpr[X86_RAX], want);
    assert_true(stat(&r, "indirect_hits") > 0); /* returns stayed in translated code */
    stop(&r);
}

/* A kick must bring back a guest that never leaves translated code on its own. */
static void kick_case(const uint8_t *start_, const uint8_t *end_)
{
    struct run r;
    /* As the VMM does (machine.c): the fallback first, so that the vCPU's own handler, which
     * vcpu_create installs, is the one a kick reaches. */
    kick_install_fallback_handler();
    start(&r, start_, end_);
    struct kick_timer kt;
    assert_int_equal(kick_timer_create(&kt), 0);
    for (int i = 0; i < 20; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
        kick_timer_arm(&kt, now + 2000000); /* 2 ms */
        r.vcpu->kick_pending = 0;
        assert_int_equal(dbt_backend_ops.vcpu_run(r.vcpu, &r.exit), 0);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t back = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
        assert_int_equal(r.exit.reason, VM_EXIT_INTR);
        assert_true(back - now < 50000000); /* well before the 10 ms repeats pile up */
    }
    kick_timer_destroy(&kt);
    stop(&r);
}

static void test_kick_tight_loop(void **unused)
{
    (void)unused;
    kick_case(f_spin_start, f_spin_end);
}

static void test_kick_jcc_loop(void **unused)
{
    (void)unused;
    kick_case(f_spin_jcc_start, f_spin_jcc_end);
}

static void test_kick_long_loop(void **unused)
{
    (void)unused;
    kick_case(f_spin_long_start, f_spin_long_end);
}

static void test_interrupt_window_after_shadow(void **unused)
{
    (void)unused;
    struct run r;
    start(&r, f_window_start, f_window_end);
    r.vcpu->request_interrupt_window = true;
    assert_int_equal(go(&r), VM_EXIT_IRQ_WINDOW_OPEN);
    assert_int_equal(r.st.rip, CODE + 1 + 2); /* STI and the INC in its shadow have run */
    assert_int_equal(r.st.gpr[X86_RAX], 1);
    assert_int_equal(r.st.gpr[X86_RBX], 0);
    assert_int_equal(dbt_backend_ops.vcpu_inject_interrupt(r.vcpu, 0x30), 0);
    r.vcpu->request_interrupt_window = false;
    go(&r); /* vector 0x30 goes to the default stub: reported at the interrupted RIP */
    uint64_t fr[5];
    exception_frame(&r, fr);
    assert_int_equal(fr[2], 0x30);
    assert_int_equal(fr[4], CODE + 3);
    stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_sti_keep_flags),
        cmocka_unit_test(test_popf_virtual_if),
        cmocka_unit_test(test_popf_slow_path),
        cmocka_unit_test(test_loop_is_chained),
        cmocka_unit_test(test_returns_hit_lookup),
        cmocka_unit_test(test_callout_falls_through),
        cmocka_unit_test(test_self_modifying_code),
        cmocka_unit_test(test_self_modifying_code_unchains),
        cmocka_unit_test(test_self_modifying_code_unlinks_jcc),
        cmocka_unit_test(test_divide_error_exact),
        cmocka_unit_test(test_undecodable_is_ud),
        cmocka_unit_test(test_ud2_is_ud),
        cmocka_unit_test(test_rip_relative),
        cmocka_unit_test(test_cache_fills_and_flushes),
        cmocka_unit_test(test_compute_kernel_matches_native),
        cmocka_unit_test(test_kick_tight_loop),
        cmocka_unit_test(test_kick_jcc_loop),
        cmocka_unit_test(test_kick_long_loop),
        cmocka_unit_test(test_interrupt_window_after_shadow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
