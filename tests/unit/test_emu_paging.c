/* test_emu_paging.c - the emulation core sees guest memory through the guest's page tables:
 * emulated stores land where the guest maps them, set A/D, fault with the architected CR2 and
 * error code, and MOV CR3 / INVLPG / paging-control writes and stores reach the MMU hooks. */
#include <asm/processor-flags.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "emu/emu.h"
#include "mmu/page_walk.h"
#include "vmm/guest_layout.h"
#include "vmm/platform.h"

static struct guest_memory *mem;
static struct vcpu_state st;
static struct emu_ctx ctx;
static struct x86_decoder dec;
#define CODE GUEST_IMAGE_BASE
#define PD (GUEST_RAM_BASE + GUEST_PT_OFFSET + 0x2000) /* the platform's page directory */
#define STACK_VA 0x40800000ULL                         /* PD[4]: a 2 MiB page */
#define STACK_GPA 0x40C00000ULL                        /* where the test maps it instead */

static struct {
    unsigned flushes[EMU_TLB_FLUSH_MAX_VALUE + 1];
    uint64_t last_gla, written_gpa, written_len;
    unsigned writes;
} seen;

static void hook_flush(void *arg, enum emu_tlb_flush kind, uint64_t gla)
{
    (void)arg;
    seen.flushes[kind]++;
    seen.last_gla = gla;
}

static void hook_written(void *arg, uint64_t gpa, uint64_t len)
{
    (void)arg;
    seen.writes++;
    seen.written_gpa = gpa;
    seen.written_len = len;
}

static const struct emu_mmu_hooks hooks = {.tlb_flush = hook_flush, .phys_written = hook_written};

static uint64_t q(uint64_t gpa)
{
    uint64_t v = 0;
    assert_int_equal(guest_ram_read(mem, gpa, &v, 8), 0);
    return v;
}

static void set_q(uint64_t gpa, uint64_t v)
{
    assert_int_equal(guest_ram_write(mem, gpa, &v, 8), 0);
}

static int setup(void **unused)
{
    (void)unused;
    if (guest_memory_create(0, &mem) < 0)
        return -1;
    x86_decoder_init(&dec);
    return 0;
}

static int teardown(void **unused)
{
    (void)unused;
    guest_memory_destroy(mem);
    return 0;
}

static int reset(void **unused)
{
    (void)unused;
    memset(mem->ram, 0, 0x1000000);
    platform_setup(mem);
    emu_reset_state(&st, CODE);
    /* the stack's 2 MiB page maps somewhere else than its identity */
    set_q(PD + 8 * ((STACK_VA >> 21) & 511), STACK_GPA | PTE_P | PTE_RW | PTE_PS);
    st.gpr[X86_RSP] = STACK_VA + 0x1000;
    ctx.state = &st;
    ctx.mem = mem;
    ctx.mmu = &hooks;
    memset(&seen, 0, sizeof(seen));
    return 0;
}

static struct emu_result run(const char *bytes, unsigned len)
{
    struct x86_decoded_insn insn;
    struct emu_result r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(guest_ram_write(mem, st.rip, bytes, len), 0);
    assert_int_equal(x86_decode(&dec, bytes, len, st.rip, &insn), 0);
    emu_execute(&ctx, &insn, &r);
    return r;
}

static void pushf_stores_where_the_guest_maps_the_stack(void **unused)
{
    (void)unused;
    struct emu_result r = run("\x9c", 1); /* pushfq */
    assert_int_equal(r.status, EMU_OK);
    assert_int_equal(q(STACK_GPA + 0x1000 - 8), st.rflags);
    assert_int_equal(q(STACK_VA + 0x1000 - 8), 0); /* not the identity page */
    uint64_t pde = q(PD + 8 * 4);
    assert_true(pde & PTE_A);
    assert_true(pde & PTE_D); /* the store dirtied the page */
    assert_int_equal(seen.writes, 1);
    assert_int_equal(seen.written_gpa, STACK_GPA + 0x1000 - 8);
    assert_int_equal(seen.written_len, 8);
}

static void unmapped_stack_faults_with_cr2_and_error_code(void **unused)
{
    (void)unused;
    set_q(PD + 8 * 4, 0);
    struct emu_result r = run("\x9c", 1);
    assert_int_equal(r.status, EMU_EXCEPTION);
    assert_int_equal(r.vector, 14);
    assert_int_equal(r.error_code, PF_ERR_W);
    assert_int_equal(r.cr2, STACK_VA + 0x1000 - 8);
    assert_int_equal(st.rip, CODE); /* a fault: the instruction did not complete */
    assert_int_equal(seen.writes, 0);
    /* read-only with CR0.WP: a protection fault; WP = 0 lets a supervisor write through */
    set_q(PD + 8 * 4, STACK_GPA | PTE_P | PTE_PS);
    r = run("\x9c", 1);
    assert_int_equal(r.error_code, PF_ERR_P | PF_ERR_W);
    st.cr0 &= ~(uint64_t)X86_CR0_WP;
    r = run("\x9c", 1);
    assert_int_equal(r.status, EMU_OK);
}

static void delivery_through_an_unmapped_stack_shuts_down(void **unused)
{
    (void)unused;
    set_q(PD + 8 * 4, 0);
    struct emu_result r = run("\xcd\x21", 2); /* int 0x21: #PF pushing, #PF again -> #DF ... */
    assert_int_equal(r.status, EMU_SHUTDOWN);
    assert_int_equal(st.cr2 & ~0xFFFULL, STACK_VA);
}

static void cr3_invlpg_and_paging_controls_reach_the_hooks(void **unused)
{
    (void)unused;
    st.gpr[X86_RAX] = st.cr3;
    run("\x0f\x22\xd8", 3); /* mov cr3, rax */
    assert_int_equal(seen.flushes[EMU_TLB_CR3], 1);
    st.gpr[X86_RAX] = 0x40123456;
    run("\x0f\x01\x38", 3); /* invlpg [rax] */
    assert_int_equal(seen.flushes[EMU_TLB_PAGE], 1);
    assert_int_equal(seen.last_gla, 0x40123456);
    st.gpr[X86_RAX] = st.cr4 | X86_CR4_PGE;
    run("\x0f\x22\xe0", 3); /* mov cr4, rax: PGE on flushes everything (SDM 4.10.4.1) */
    assert_int_equal(seen.flushes[EMU_TLB_ALL], 1);
    st.gpr[X86_RAX] = st.cr4 | X86_CR4_OSFXSR; /* no paging bit changes: nothing */
    run("\x0f\x22\xe0", 3);
    assert_int_equal(seen.flushes[EMU_TLB_ALL], 1);
    st.gpr[X86_RCX] = 0xC0000080; /* EFER.NXE off */
    st.gpr[X86_RAX] = (uint32_t)(st.efer & ~(1ULL << 11));
    st.gpr[X86_RDX] = 0;
    run("\x0f\x30", 2);
    assert_int_equal(seen.flushes[EMU_TLB_ALL], 2);
}

static void fetch_stops_at_a_page_it_cannot_fetch(void **unused)
{
    (void)unused;
    uint8_t b[15];
    uint32_t err;
    set_q(PD + 8 * 4, STACK_GPA | PTE_P | PTE_PS | PTE_XD); /* no execute */
    assert_int_equal(emu_fetch(&ctx, STACK_VA, b, 15, &err), 0);
    assert_int_equal(err, PF_ERR_P | PF_ERR_I);
    /* the last 3 bytes of an executable page, then the non-executable one */
    assert_int_equal(emu_fetch(&ctx, STACK_VA - 3, b, 15, &err), 3);
    assert_false(q(PD + 8 * 3) & PTE_A); /* a look, not an access */
}

/* emu_execute_store: the forms that write page tables, with their flags (SDM vol. 2). */
static struct emu_result store(const char *bytes, unsigned len)
{
    struct x86_decoded_insn insn;
    struct emu_result r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(guest_ram_write(mem, st.rip, bytes, len), 0);
    assert_int_equal(x86_decode(&dec, bytes, len, st.rip, &insn), 0);
    emu_execute_store(&ctx, &insn, &r);
    return r;
}

#define ARITH                                                                                      \
    (X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_OF)

static void stores_the_core_performs_for_traced_tables(void **unused)
{
    (void)unused;
    const uint64_t va = STACK_VA + 0x100, pa = STACK_GPA + 0x100;
    st.gpr[X86_RDX] = va;
    st.gpr[X86_RAX] = 0x8000000000000001ULL;
    assert_int_equal(store("\x48\x89\x02", 3).status, EMU_OK); /* mov [rdx], rax */
    assert_int_equal(q(pa), 0x8000000000000001ULL);
    assert_int_equal(st.rip, CODE + 3);
    assert_int_equal(seen.written_gpa, pa);
    store("\x48\x83\x0a\x40", 4); /* or qword [rdx], 0x40 */
    assert_int_equal(q(pa), 0x8000000000000041ULL);
    assert_int_equal(st.rflags & ARITH, X86_EFLAGS_SF | X86_EFLAGS_PF); /* 0x41: even parity */
    store("\x48\x83\x22\xfe", 4);                                       /* and qword [rdx], -2 */
    assert_int_equal(q(pa), 0x8000000000000040ULL);
    store("\x48\x0f\xba\x2a\x3f", 5); /* bts qword [rdx], 63: the bit was set */
    assert_true(st.rflags & X86_EFLAGS_CF);
    store("\x48\x0f\xba\x32\x3f", 5); /* btr qword [rdx], 63 */
    assert_int_equal(q(pa), 0x40);
    st.gpr[X86_RCX] = 64 + 3; /* bts [rdx], rcx: a register offset reaches the next qword */
    store("\x48\x0f\xab\x0a", 4);
    assert_int_equal(q(pa + 8), 8);
    assert_false(st.rflags & X86_EFLAGS_CF);
    st.rflags |= X86_EFLAGS_CF; /* inc leaves CF alone */
    store("\x48\xff\x02", 3);
    assert_int_equal(q(pa), 0x41);
    assert_true(st.rflags & X86_EFLAGS_CF);
    /* lock cmpxchg [rdx], rcx: equal -> stored, ZF; unequal -> RAX loaded, ZF clear */
    st.gpr[X86_RAX] = 0x41;
    st.gpr[X86_RCX] = 0x99;
    store("\xf0\x48\x0f\xb1\x0a", 5);
    assert_int_equal(q(pa), 0x99);
    assert_true(st.rflags & X86_EFLAGS_ZF);
    store("\xf0\x48\x0f\xb1\x0a", 5);
    assert_int_equal(q(pa), 0x99);
    assert_int_equal(st.gpr[X86_RAX], 0x99);
    assert_false(st.rflags & X86_EFLAGS_ZF);
    st.gpr[X86_RCX] = 7; /* xchg [rdx], rcx */
    store("\x48\x87\x0a", 3);
    assert_int_equal(q(pa), 7);
    assert_int_equal(st.gpr[X86_RCX], 0x99);
    /* rep stosq: 4 zero qwords, registers left as the CPU leaves them */
    st.gpr[X86_RDI] = va;
    st.gpr[X86_RCX] = 4;
    st.gpr[X86_RAX] = 0;
    store("\xf3\x48\xab", 3);
    assert_int_equal(q(pa) | q(pa + 8) | q(pa + 16) | q(pa + 24), 0);
    assert_int_equal(st.gpr[X86_RCX], 0);
    assert_int_equal(st.gpr[X86_RDI], va + 32);
    /* not a store the core performs */
    assert_int_equal(store("\x48\x11\x02", 3).status, EMU_UNHANDLED); /* adc */
}

static void a_faulting_store_changes_nothing(void **unused)
{
    (void)unused;
    set_q(PD + 8 * 4, STACK_GPA | PTE_P | PTE_PS); /* read-only */
    st.gpr[X86_RDX] = STACK_VA;
    st.gpr[X86_RCX] = 5;
    struct emu_result r = store("\x48\x87\x0a", 3); /* xchg [rdx], rcx */
    assert_int_equal(r.status, EMU_EXCEPTION);
    assert_int_equal(r.error_code, PF_ERR_P | PF_ERR_W);
    assert_int_equal(st.gpr[X86_RCX], 5);
    assert_int_equal(st.rip, CODE);
    assert_int_equal(seen.writes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(pushf_stores_where_the_guest_maps_the_stack, reset),
        cmocka_unit_test_setup(unmapped_stack_faults_with_cr2_and_error_code, reset),
        cmocka_unit_test_setup(delivery_through_an_unmapped_stack_shuts_down, reset),
        cmocka_unit_test_setup(cr3_invlpg_and_paging_controls_reach_the_hooks, reset),
        cmocka_unit_test_setup(fetch_stops_at_a_page_it_cannot_fetch, reset),
        cmocka_unit_test_setup(stores_the_core_performs_for_traced_tables, reset),
        cmocka_unit_test_setup(a_faulting_store_changes_nothing, reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
