/* test_shadow_mmu.c - the shadow MMU (mmu/shadow_mmu.h) driven directly, without a backend:
 * hidden faults map what the guest's tables say (2 MiB at once, read-only until D is set),
 * true faults carry the walk's error code, traced tables are read-only and a store to one
 * zaps what it translated, INVLPG and CR3 switches with and without the root cache, the clear
 * ending for addresses outside the window, MMIO, and dbt's code protection.
 *
 * Whether a window page is mapped is asked of the kernel (a pipe copies from or into it and
 * says EFAULT), never by touching it: the test must not fault. */
#include <asm/processor-flags.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "emu/emu.h"
#include "mmu/page_walk.h"
#include "mmu/shadow_mmu.h"
#include "vmm/guest_layout.h"
#include "vmm/platform.h"

static struct guest_memory *mem;
static struct shadow_mmu *sm;
static struct vcpu_state st;
static int pipefd[2];
static uint64_t code_page_written;
static unsigned spaces_changed;
static uint64_t dropped_lo, dropped_hi;

#define PT_BASE (GUEST_RAM_BASE + GUEST_PT_OFFSET)
#define PD (PT_BASE + 0x2000)
#define DATA 0x40800000ULL /* PD[4], a 2 MiB page of the identity map */

static bool readable(uint64_t gla)
{
    return write(pipefd[1], (const void *)(uintptr_t)gla, 1) == 1 &&
           read(pipefd[0], &(char){0}, 1) == 1;
}

static bool writable(uint64_t gla)
{
    char c = 0;
    if (write(pipefd[1], &c, 1) != 1)
        return false;
    if (read(pipefd[0], (void *)(uintptr_t)gla, 1) == 1)
        return true;
    read(pipefd[0], &c, 1); /* drain */
    return false;
}

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

static void on_code_written(void *arg, uint64_t gpa_page)
{
    (void)arg;
    code_page_written = gpa_page;
}

static void on_space_changed(void *arg)
{
    (void)arg;
    spaces_changed++;
}

static void on_dropped(void *arg, uint64_t lo, uint64_t hi)
{
    (void)arg;
    dropped_lo = lo;
    dropped_hi = hi;
}

static int make(unsigned roots)
{
    if (guest_memory_create(GUEST_MEMORY_FIXED, &mem) < 0)
        return -1;
    platform_setup(mem);
    emu_reset_state(&st, GUEST_IMAGE_BASE);
    struct shadow_config c = {.mem = mem, .roots = roots};
    if (shadow_mmu_create(&c, &sm) < 0)
        return -1;
    shadow_mmu_bind_state(sm, &st);
    static const struct shadow_listener listener = {.translations_dropped = on_dropped,
                                                    .space_changed = on_space_changed,
                                                    .code_written = on_code_written};
    shadow_mmu_set_listener(sm, &listener, NULL);
    code_page_written = 0;
    spaces_changed = 0;
    dropped_lo = dropped_hi = 0;
    return 0;
}

static int setup4(void **state)
{
    (void)state;
    return make(4);
}

static int setup0(void **state)
{
    (void)state;
    return make(0);
}

static int teardown(void **state)
{
    (void)state;
    shadow_mmu_destroy(sm);
    guest_memory_destroy(mem);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    return pipe(pipefd);
}

static enum shadow_fault_kind fault(uint64_t gla, unsigned access, struct shadow_fault *f)
{
    shadow_mmu_fault(sm, gla, access, f);
    return f->kind;
}

static void window_starts_empty_and_a_hidden_fault_maps_2m(void **state)
{
    (void)state;
    struct shadow_fault f;
    assert_false(readable(DATA + 0x1000));
    *(uint64_t *)guest_ram_ptr(mem, DATA + 0x1F0000, 8) = 0x1234;
    assert_int_equal(fault(DATA + 0x1000, MMU_READ, &f), SHADOW_RETRY);
    /* one fault, the whole 2 MiB page, read-only: the PDE's D flag is clear */
    assert_true(readable(DATA + 0x1F0000));
    assert_int_equal(*(volatile uint64_t *)(uintptr_t)(DATA + 0x1F0000), 0x1234);
    assert_false(writable(DATA + 0x1000));
    assert_true(q(PD + 8 * 4) & PTE_A);
    assert_false(q(PD + 8 * 4) & PTE_D);
    assert_int_equal(fault(DATA + 0x1000, MMU_WRITE, &f), SHADOW_RETRY);
    assert_true(q(PD + 8 * 4) & PTE_D);
    assert_true(writable(DATA + 0x1FF000));
    const struct shadow_stats *s = shadow_mmu_stats(sm);
    assert_int_equal(s->hidden_faults, 2);
    assert_int_equal(s->true_page_faults, 0);
    assert_int_equal(s->tables_traced, 3); /* PML4, PDPT, PD */
}

static void a_true_fault_carries_the_walks_error_code(void **state)
{
    (void)state;
    struct shadow_fault f;
    set_q(PD + 8 * 4, 0);
    assert_int_equal(fault(DATA, MMU_WRITE, &f), SHADOW_GUEST_PF);
    assert_int_equal(f.error_code, PF_ERR_W);
    set_q(PD + 8 * 4, DATA | PTE_P | PTE_PS | PTE_XD); /* read-only, no execute */
    assert_int_equal(fault(DATA, MMU_WRITE, &f), SHADOW_GUEST_PF);
    assert_int_equal(f.error_code, PF_ERR_P | PF_ERR_W);
    assert_int_equal(fault(DATA, MMU_FETCH, &f), SHADOW_GUEST_PF);
    assert_int_equal(f.error_code, PF_ERR_P | PF_ERR_I);
    assert_int_equal(shadow_mmu_stats(sm)->true_page_faults, 3);
}

static void traced_tables_are_read_only_and_a_store_zaps(void **state)
{
    (void)state;
    struct shadow_fault f;
    const struct emu_mmu_hooks *h = shadow_mmu_hooks(sm);
    assert_int_equal(fault(DATA, MMU_WRITE, &f), SHADOW_RETRY);
    /* the page directory lives in the platform's 2 MiB page: mapped, but never writable */
    assert_int_equal(fault(PD, MMU_READ, &f), SHADOW_RETRY);
    assert_true(readable(PD));
    assert_int_equal(fault(GUEST_RAM_BASE + GUEST_IDT_OFFSET, MMU_WRITE, &f), SHADOW_RETRY);
    assert_true(writable(GUEST_RAM_BASE + GUEST_IDT_OFFSET)); /* its neighbours are, now */
    assert_false(writable(PD));
    assert_int_equal(fault(PD + 8 * 4, MMU_WRITE, &f), SHADOW_TABLE_WRITE);
    assert_int_equal(f.gpa, PD + 8 * 4);
    /* the store itself (as the emulation core reports it) zaps DATA's translation only */
    assert_true(readable(DATA));
    set_q(PD + 8 * 4, 0x40C00000ULL | PTE_P | PTE_RW | PTE_PS);
    h->phys_written(h->arg, PD + 8 * 4, 8);
    assert_false(readable(DATA));
    assert_true(readable(PD));
    assert_int_equal(shadow_mmu_stats(sm)->zapped_entries, 1);
    *(uint64_t *)guest_ram_ptr(mem, 0x40C00000ULL, 8) = 0xC0FFEE;
    assert_int_equal(fault(DATA, MMU_READ, &f), SHADOW_RETRY);
    assert_int_equal(*(volatile uint64_t *)(uintptr_t)DATA, 0xC0FFEE);
}

static void invlpg_zaps_the_page_and_cr3_switches_use_the_cache(void **state)
{
    (void)state;
    struct shadow_fault f;
    const struct emu_mmu_hooks *h = shadow_mmu_hooks(sm);
    assert_int_equal(fault(DATA, MMU_READ, &f), SHADOW_RETRY);
    h->tlb_flush(h->arg, EMU_TLB_PAGE, DATA + 0x12345);
    assert_false(readable(DATA));
    assert_int_equal(fault(DATA, MMU_READ, &f), SHADOW_RETRY);
    /* a second address space: a copy of PML4 and PDPT sharing the PD */
    uint64_t pml4b = GUEST_RAM_BASE + 0x500000, pdptb = pml4b + 0x1000;
    memcpy(guest_ram_ptr(mem, pdptb, 4096), guest_ram_ptr(mem, PT_BASE + 0x1000, 4096), 4096);
    set_q(pml4b, pdptb | PTE_P | PTE_RW);
    uint64_t cr3a = st.cr3;
    st.cr3 = pml4b;
    h->tlb_flush(h->arg, EMU_TLB_CR3, 0);
    assert_false(readable(DATA)); /* a new root starts empty */
    assert_int_equal(fault(DATA, MMU_READ, &f), SHADOW_RETRY);
    st.cr3 = cr3a;
    h->tlb_flush(h->arg, EMU_TLB_CR3, 0);
    assert_true(readable(DATA)); /* root-cache hit: re-installed without a fault */
    const struct shadow_stats *s = shadow_mmu_stats(sm);
    assert_int_equal(s->cr3_switches, 2);
    assert_int_equal(s->root_cache_hits, 1);
    assert_int_equal(s->root_cache_misses, 1);
    /* the same CR3 again is no switch */
    h->tlb_flush(h->arg, EMU_TLB_CR3, 0);
    assert_int_equal(s->cr3_switches, 2);
    /* a store to the inactive root's PDPT zaps in that root, although it is not mapped */
    set_q(pdptb + 8, 0);
    h->phys_written(h->arg, pdptb + 8, 8);
    st.cr3 = pml4b;
    h->tlb_flush(h->arg, EMU_TLB_CR3, 0);
    assert_false(readable(DATA));
    assert_int_equal(fault(DATA, MMU_READ, &f), SHADOW_GUEST_PF);
}

static void no_root_cache_rebuilds_on_every_switch(void **state)
{
    (void)state;
    struct shadow_fault f;
    const struct emu_mmu_hooks *h = shadow_mmu_hooks(sm);
    assert_int_equal(fault(DATA, MMU_READ, &f), SHADOW_RETRY);
    uint64_t pml4b = GUEST_RAM_BASE + 0x500000;
    memcpy(guest_ram_ptr(mem, pml4b, 4096), guest_ram_ptr(mem, PT_BASE, 4096), 4096);
    uint64_t cr3a = st.cr3;
    st.cr3 = pml4b;
    h->tlb_flush(h->arg, EMU_TLB_CR3, 0);
    st.cr3 = cr3a;
    h->tlb_flush(h->arg, EMU_TLB_CR3, 0);
    assert_false(readable(DATA));
    const struct shadow_stats *s = shadow_mmu_stats(sm);
    assert_int_equal(s->root_cache_hits, 0);
    assert_int_equal(s->root_cache_misses, 2);
}

static void outside_window_mmio_and_paging_controls(void **state)
{
    (void)state;
    struct shadow_fault f;
    assert_int_equal(fault(0x1000, MMU_READ, &f), SHADOW_GUEST_PF); /* not mapped: the guest's */
    uint64_t *pml4 = guest_ram_ptr(mem, PT_BASE, 4096);
    pml4[1] = pml4[0]; /* 512 GiB up: the guest maps it, the window cannot hold it */
    assert_int_equal(fault(0x8040000000ULL, MMU_READ, &f), SHADOW_OUTSIDE_WINDOW);
    assert_int_equal(f.gpa, 0x40000000ULL);
    char text[200];
    shadow_fault_describe(&f, text, sizeof(text));
    assert_non_null(strstr(text, "0x8040000000"));
    assert_int_equal(fault(GUEST_MMIO_BASE + 8, MMU_WRITE, &f), SHADOW_MMIO);
    assert_int_equal(f.gpa, GUEST_MMIO_BASE + 8);
    assert_int_equal(fault(DATA, MMU_READ, &f), SHADOW_RETRY);
    const struct emu_mmu_hooks *h = shadow_mmu_hooks(sm);
    h->tlb_flush(h->arg, EMU_TLB_ALL, 0); /* e.g. CR0.WP changed: nothing survives */
    assert_false(readable(DATA));
}

static void code_pages_are_write_protected_for_dbt(void **state)
{
    (void)state;
    struct shadow_fault f;
    assert_int_equal(fault(DATA, MMU_WRITE, &f), SHADOW_RETRY);
    assert_true(writable(DATA + 0x3000));
    shadow_mmu_protect_code(sm, DATA + 0x3000);
    assert_false(writable(DATA + 0x3000));
    assert_true(writable(DATA + 0x4000));
    assert_int_equal(fault(DATA + 0x3008, MMU_WRITE, &f), SHADOW_CODE_WRITE);
    assert_int_equal(code_page_written, DATA + 0x3000);
    assert_true(writable(DATA + 0x3000));
    /* a store reported by the emulation core counts too */
    shadow_mmu_protect_code(sm, DATA + 0x5000);
    code_page_written = 0;
    const struct emu_mmu_hooks *h = shadow_mmu_hooks(sm);
    h->phys_written(h->arg, DATA + 0x5100, 4);
    assert_int_equal(code_page_written, DATA + 0x5000);
}

/* What dbt hears: the translation of its code pages, and every change of them. */
static void code_translations_and_their_listener(void **state)
{
    (void)state;
    uint64_t gpa;
    uint32_t err;
    const struct emu_mmu_hooks *h = shadow_mmu_hooks(sm);
    assert_int_equal(shadow_mmu_code_page(sm, DATA + 0x2000, &gpa, &err), 0);
    assert_int_equal(gpa, DATA + 0x2000);
    assert_true(readable(DATA + 0x2000)); /* it became an ordinary shadow entry */
    set_q(PD + 8 * 4, 0x40C00000ULL | PTE_P | PTE_RW | PTE_PS | PTE_XD);
    h->phys_written(h->arg, PD + 8 * 4, 8); /* the guest rewrote the PDE: dbt must hear it */
    assert_int_equal(dropped_lo, DATA);
    assert_int_equal(dropped_hi, DATA + (2ULL << 20));
    assert_int_equal(shadow_mmu_code_page(sm, DATA + 0x2000, &gpa, &err), -EFAULT);
    assert_int_equal(err, PF_ERR_P | PF_ERR_I);                              /* XD now */
    assert_int_equal(shadow_mmu_code_page(sm, 0x1000, &gpa, &err), -EFAULT); /* unmapped */
    assert_int_equal(err, PF_ERR_I);
    uint64_t *pml4 = guest_ram_ptr(mem, PT_BASE, 4096);
    pml4[1] = pml4[0]; /* mapped, but 512 GiB up: outside the window */
    assert_int_equal(shadow_mmu_code_page(sm, 0x8040000000ULL, &gpa, &err), -ERANGE);
    set_q(PD + 8 * 5, GUEST_MMIO_BASE | PTE_P | PTE_PS); /* code "in" the MMIO window */
    assert_int_equal(shadow_mmu_code_page(sm, 0x40A00000ULL, &gpa, &err), -ENXIO);
    unsigned before = spaces_changed;
    h->tlb_flush(h->arg, EMU_TLB_CR3, 0); /* the same CR3: nothing changed */
    assert_int_equal(spaces_changed, before);
    h->tlb_flush(h->arg, EMU_TLB_ALL, 0);
    assert_int_equal(spaces_changed, before + 1);
}

/* Second-level permissions: exits, or #VE with the information area (SDM vol. 3C 25.5.7.2). */
static void second_level_permissions_exit_or_ve(void **state)
{
    (void)state;
    struct shadow_fault f;
    assert_int_equal(fault(DATA, MMU_WRITE, &f), SHADOW_RETRY);
    assert_true(writable(DATA + 0x7000));
    assert_int_equal(shadow_mmu_set_slp(sm, DATA + 0x7000, VM_SLP_READ_ONLY, false), 0);
    assert_false(writable(DATA + 0x7000)); /* restricted at once where it is mapped */
    assert_true(readable(DATA + 0x7000));
    assert_int_equal(fault(DATA + 0x7010, MMU_WRITE, &f), SHADOW_SLP_EXIT);
    assert_int_equal(f.gpa, DATA + 0x7010);
    assert_int_equal(f.slp_access, VM_SLP_WRITE);
    assert_int_equal(shadow_mmu_set_slp(sm, DATA + 0x7000, VM_SLP_FULL, false), 0);
    assert_int_equal(fault(DATA + 0x7010, MMU_WRITE, &f), SHADOW_RETRY);
    assert_true(writable(DATA + 0x7000));
    assert_int_equal(shadow_mmu_set_slp(sm, DATA + 0x8000, VM_SLP_NO_ACCESS, false), 0);
    assert_false(readable(DATA + 0x8000));
    assert_int_equal(fault(DATA + 0x8000, MMU_READ, &f), SHADOW_SLP_EXIT);
    assert_int_equal(f.slp_access, VM_SLP_READ);
    /* convertible, with an information area that is not busy: #VE, the area filled */
    uint64_t area = GUEST_RAM_BASE + 0x600000;
    assert_int_equal(shadow_mmu_set_ve_info(sm, area), 0);
    assert_int_equal(shadow_mmu_set_slp(sm, DATA + 0x9000, VM_SLP_READ_ONLY, true), 0);
    assert_int_equal(fault(DATA + 0x9008, MMU_WRITE, &f), SHADOW_VE);
    const uint8_t *info = guest_ram_ptr(mem, area, 40);
    uint32_t reason, busy;
    uint64_t qual, gla, gpa;
    memcpy(&reason, info, 4);
    memcpy(&busy, info + 4, 4);
    memcpy(&qual, info + 8, 8);
    memcpy(&gla, info + 16, 8);
    memcpy(&gpa, info + 24, 8);
    assert_int_equal(reason, 48);
    assert_int_equal(busy, 0xFFFFFFFF);
    assert_int_equal(qual, 0x2 | 0x8 | 0x20 | 0x80 | 0x100); /* write; R, X allowed; GLA */
    assert_int_equal(gla, DATA + 0x9008);
    assert_int_equal(gpa, DATA + 0x9008);
    /* busy: the next violation is an exit, as on the processor */
    assert_int_equal(fault(DATA + 0x9008, MMU_WRITE, &f), SHADOW_SLP_EXIT);
    const struct shadow_stats *s = shadow_mmu_stats(sm);
    assert_int_equal(s->ve_delivered, 1);
    assert_int_equal(s->slp_exits, 3);
    assert_int_equal(shadow_mmu_set_slp(sm, GUEST_MMIO_BASE, VM_SLP_READ_ONLY, false), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(window_starts_empty_and_a_hidden_fault_maps_2m, setup4,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_true_fault_carries_the_walks_error_code, setup4,
                                        teardown),
        cmocka_unit_test_setup_teardown(traced_tables_are_read_only_and_a_store_zaps, setup4,
                                        teardown),
        cmocka_unit_test_setup_teardown(invlpg_zaps_the_page_and_cr3_switches_use_the_cache, setup4,
                                        teardown),
        cmocka_unit_test_setup_teardown(no_root_cache_rebuilds_on_every_switch, setup0, teardown),
        cmocka_unit_test_setup_teardown(outside_window_mmio_and_paging_controls, setup4, teardown),
        cmocka_unit_test_setup_teardown(code_pages_are_write_protected_for_dbt, setup4, teardown),
        cmocka_unit_test_setup_teardown(code_translations_and_their_listener, setup4, teardown),
        cmocka_unit_test_setup_teardown(second_level_permissions_exit_or_ve, setup4, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
