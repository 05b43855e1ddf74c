/* test_page_walk.c - the guest page walk (mmu/page_walk.c) against Intel SDM vol. 3A 4.5-4.8:
 * translations of 4 KiB, 2 MiB and 1 GiB pages, access rights, A/D updates, the #PF error
 * code, reserved bits, a recursive PML4 entry and tables outside RAM (read as not present). */
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
static struct mmu_paging pg;

/* A private 4-level hierarchy in RAM, away from the platform's: PML4, PDPT, PD, PT. */
#define PML4 (GUEST_RAM_BASE + 0x100000)
#define PDPT (PML4 + 0x1000)
#define PD (PML4 + 0x2000)
#define PT (PML4 + 0x3000)
#define VA 0x40600000ULL /* PML4[0] PDPT[1] PD[3] PT[0..] */
#define DATA (GUEST_RAM_BASE + 0x900000)
#define EFER_NXE (1ULL << 11)

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

static int setup(void **state)
{
    (void)state;
    return guest_memory_create(0, &mem) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    guest_memory_destroy(mem);
    return 0;
}

/* Fresh RAM, the platform area, and the private hierarchy mapping VA -> DATA (4 KiB pages,
 * present and writable, A and D clear). */
static int reset(void **state)
{
    (void)state;
    memset(mem->ram, 0, 0x1000000);
    platform_setup(mem);
    struct vcpu_state s;
    emu_reset_state(&s, GUEST_IMAGE_BASE);
    mmu_paging_from_state(&s, &pg);
    pg.cr3 = PML4;
    set_q(PML4, PDPT | PTE_P | PTE_RW);
    set_q(PDPT + 8 * 1, PD | PTE_P | PTE_RW);
    set_q(PD + 8 * 3, PT | PTE_P | PTE_RW);
    for (unsigned i = 0; i < 8; i++)
        set_q(PT + 8 * i, (DATA + 0x1000 * i) | PTE_P | PTE_RW);
    return 0;
}

static void platform_identity_map_uses_2m_pages(void **state)
{
    (void)state;
    struct mmu_walk w;
    pg.cr3 = GUEST_RAM_BASE + GUEST_PT_OFFSET;
    assert_int_equal(mmu_walk(mem, &pg, 0x40201234, MMU_READ, &w), MMU_WALK_OK);
    assert_int_equal(w.gpa, 0x40201234);
    assert_int_equal(w.page_shift, 21);
    assert_int_equal(w.levels, 3);
    /* A in every entry used, D not on a read (SDM vol. 3A 4.8) */
    for (unsigned i = 0; i < 3; i++)
        assert_true(q(w.entry_gpa[i]) & PTE_A);
    assert_false(q(w.entry_gpa[2]) & PTE_D);
    assert_int_equal(mmu_walk(mem, &pg, 0x40201234, MMU_WRITE, &w), MMU_WALK_OK);
    assert_true(q(w.entry_gpa[2]) & PTE_D);
    assert_false(q(w.entry_gpa[0]) & PTE_D); /* D only in the leaf */
}

static void four_k_page_translates_and_sets_a_then_d(void **state)
{
    (void)state;
    struct mmu_walk w;
    assert_int_equal(mmu_walk(mem, &pg, VA + 0x2abc, MMU_READ, &w), MMU_WALK_OK);
    assert_int_equal(w.gpa, DATA + 0x2abc);
    assert_int_equal(w.levels, 4);
    assert_int_equal(w.entry_gpa[3], PT + 16);
    assert_true(q(PT + 16) & PTE_A);
    assert_false(q(PT + 16) & PTE_D);
    assert_false(w.dirty);
    assert_int_equal(mmu_walk(mem, &pg, VA + 0x2abc, MMU_WRITE, &w), MMU_WALK_OK);
    assert_true(q(PT + 16) & PTE_D);
    assert_true(w.dirty);
    assert_false(q(PD + 24) & PTE_D); /* non-leaf entries have no dirty flag */
}

static void inspection_sets_nothing(void **state)
{
    (void)state;
    struct mmu_walk w;
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_WRITE | MMU_INSPECT, &w), MMU_WALK_OK);
    assert_int_equal(q(PT), DATA | PTE_P | PTE_RW);
    assert_int_equal(q(PML4), PDPT | PTE_P | PTE_RW);
}

static void not_present_error_codes(void **state)
{
    (void)state;
    struct mmu_walk w;
    set_q(PT + 8, 0);
    assert_int_equal(mmu_walk(mem, &pg, VA + 0x1000, MMU_READ, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, 0);
    assert_int_equal(mmu_walk(mem, &pg, VA + 0x1000, MMU_WRITE, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_W);
    assert_int_equal(mmu_walk(mem, &pg, VA + 0x1000, MMU_FETCH, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_I); /* I/D reported: EFER.NXE = 1 */
    pg.efer &= ~EFER_NXE;
    assert_int_equal(mmu_walk(mem, &pg, VA + 0x1000, MMU_FETCH, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, 0); /* neither NXE nor SMEP: I/D stays 0 (SDM 4.7) */
    /* a not-present upper level stops the walk there */
    set_q(PDPT + 8, 0);
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_READ, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.levels, 2);
    assert_false(q(PML4) & PTE_A); /* a failed walk leaves the tables alone */
}

static void write_protect_honours_cr0_wp(void **state)
{
    (void)state;
    struct mmu_walk w;
    set_q(PD + 24, PT | PTE_P); /* R/W clear at the PDE: the whole range is read-only */
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_READ, &w), MMU_WALK_OK);
    assert_false(w.rw);
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_WRITE, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_P | PF_ERR_W);
    assert_false(q(PT) & PTE_D);
    pg.cr0 &= ~(uint64_t)X86_CR0_WP; /* supervisor writes ignore R/W */
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_WRITE, &w), MMU_WALK_OK);
    assert_true(q(PT) & PTE_D);
    /* a CPL 3 write needs R/W whatever WP says */
    set_q(PML4, q(PML4) | PTE_US);
    set_q(PDPT + 8, q(PDPT + 8) | PTE_US);
    set_q(PD + 24, q(PD + 24) | PTE_US);
    set_q(PT, q(PT) | PTE_US);
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_WRITE | MMU_USER, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_P | PF_ERR_W | PF_ERR_U);
}

static void execute_disable(void **state)
{
    (void)state;
    struct mmu_walk w;
    set_q(PDPT + 8, q(PDPT + 8) | PTE_XD); /* XD at any level forbids fetches below it */
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_READ, &w), MMU_WALK_OK);
    assert_true(w.xd);
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_FETCH, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_P | PF_ERR_I);
    /* without EFER.NXE bit 63 is reserved (SDM 4.5.4, table 4-20) */
    pg.efer &= ~EFER_NXE;
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_READ, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_P | PF_ERR_RSVD);
    assert_int_equal(w.levels, 2);
}

static void reserved_bits_fault_with_rsvd(void **state)
{
    (void)state;
    struct mmu_walk w;
    set_q(PT, q(PT) | (1ULL << 51)); /* above MAXPHYADDR (40) */
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_WRITE, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_P | PF_ERR_W | PF_ERR_RSVD);
    set_q(PT, (DATA | PTE_P) | (1ULL << 40)); /* the first bit at MAXPHYADDR */
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_READ, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_P | PF_ERR_RSVD);
    set_q(PT, DATA | PTE_P | (0x7FFULL << 52)); /* bits 62:52 are ignored */
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_READ, &w), MMU_WALK_OK);
    set_q(PML4, q(PML4) | PTE_PS); /* PS must be 0 in a PML4E */
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_FETCH, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_P | PF_ERR_RSVD | PF_ERR_I);
    assert_int_equal(w.levels, 1);
}

static void two_m_and_one_g_pages(void **state)
{
    (void)state;
    struct mmu_walk w;
    set_q(PD + 24, 0x40A00000ULL | PTE_P | PTE_RW | PTE_PS | PTE_G);
    assert_int_equal(mmu_walk(mem, &pg, VA + 0x12345, MMU_READ, &w), MMU_WALK_OK);
    assert_int_equal(w.gpa, 0x40A12345);
    assert_int_equal(w.page_shift, 21);
    assert_true(w.global);
    set_q(PD + 24, 0x40A00000ULL | PTE_P | PTE_PS | (1ULL << 13)); /* bit 13: reserved */
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_READ, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_P | PF_ERR_RSVD);
    /* 1 GiB: reserved without CPUID support, a translation with it */
    set_q(PDPT + 8, 0x40000000ULL | PTE_P | PTE_RW | PTE_PS);
    assert_int_equal(mmu_walk(mem, &pg, VA + 5, MMU_READ, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_P | PF_ERR_RSVD);
    pg.page1gb = true;
    assert_int_equal(mmu_walk(mem, &pg, VA + 5, MMU_READ, &w), MMU_WALK_OK);
    assert_int_equal(w.gpa, VA + 5);
    assert_int_equal(w.page_shift, 30);
}

/* PML4[0] points at the PML4 itself: the walk of a window address then reads the PML4 as the
 * PDPT, and PML4[1] as the PD pointer. PD[k] pointing at the PML4 again makes the PML4's own
 * entries the PTEs of that 2 MiB slot: its page 0 is the PML4, page 1 what PML4[1] names. */
static void recursive_pml4_entry(void **state)
{
    (void)state;
    struct mmu_walk w;
    set_q(PML4, PML4 | PTE_P | PTE_RW);
    set_q(PML4 + 8, PD | PTE_P | PTE_RW);
    set_q(PD + 8 * 5, PML4 | PTE_P | PTE_RW);
    uint64_t view = 0x40000000ULL + (5ULL << 21);
    assert_int_equal(mmu_walk(mem, &pg, view, MMU_READ, &w), MMU_WALK_OK);
    assert_int_equal(w.gpa, PML4);
    assert_int_equal(w.entry_gpa[0], PML4);
    assert_int_equal(w.entry_gpa[1], PML4 + 8);
    assert_int_equal(w.entry_gpa[3], PML4);
    assert_int_equal(mmu_walk(mem, &pg, view + 0x1000 + 0x18, MMU_READ, &w), MMU_WALK_OK);
    assert_int_equal(w.gpa, PD + 0x18);
    /* the same entry was used at two levels: A is set once, the value is consistent */
    assert_int_equal(q(PML4), PML4 | PTE_P | PTE_RW | PTE_A);
    /* a write through the view updates D in PML4[0] (the leaf) */
    assert_int_equal(mmu_walk(mem, &pg, view, MMU_WRITE, &w), MMU_WALK_OK);
    assert_true(q(PML4) & PTE_D);
}

static void tables_outside_ram_read_as_not_present(void **state)
{
    (void)state;
    struct mmu_walk w;
    set_q(PD + 24, GUEST_MMIO_BASE | PTE_P | PTE_RW); /* a "page table" in the MMIO window */
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_READ, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, 0);
    assert_int_equal(w.levels, 4);
    assert_int_equal(w.entry[3], 0);
    pg.cr3 = 0x7000000000ULL; /* CR3 beyond RAM */
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_WRITE, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_W);
    assert_int_equal(w.levels, 1);
}

static void noncanonical_is_not_a_page_fault(void **state)
{
    (void)state;
    struct mmu_walk w;
    assert_int_equal(mmu_walk(mem, &pg, 0x0000800000000000ULL, MMU_READ, &w),
                     MMU_WALK_NONCANONICAL);
    assert_int_equal(mmu_walk(mem, &pg, 0xFFFF800000000000ULL, MMU_READ, &w), MMU_WALK_PAGE_FAULT);
}

static void smep_and_smap(void **state)
{
    (void)state;
    struct mmu_walk w;
    set_q(PML4, q(PML4) | PTE_US);
    set_q(PDPT + 8, q(PDPT + 8) | PTE_US);
    set_q(PD + 24, q(PD + 24) | PTE_US);
    set_q(PT, q(PT) | PTE_US); /* a user page */
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_FETCH, &w), MMU_WALK_OK);
    pg.cr4 |= X86_CR4_SMEP;
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_FETCH, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_P | PF_ERR_I);
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_READ, &w), MMU_WALK_OK);
    pg.cr4 |= X86_CR4_SMAP;
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_READ, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_P);
    pg.rflags_ac = true; /* explicit accesses pass with AC, implicit ones never */
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_WRITE, &w), MMU_WALK_OK);
    assert_int_equal(mmu_walk(mem, &pg, VA, MMU_READ | MMU_IMPLICIT, &w), MMU_WALK_PAGE_FAULT);
    /* U/S = 0 somewhere: a supervisor page, invisible to CPL 3 */
    set_q(PT + 8, (DATA + 0x1000) | PTE_P | PTE_RW);
    assert_int_equal(mmu_walk(mem, &pg, VA + 0x1000, MMU_READ | MMU_USER, &w), MMU_WALK_PAGE_FAULT);
    assert_int_equal(w.error_code, PF_ERR_P | PF_ERR_U);
}

static void paging_off_is_identity(void **state)
{
    (void)state;
    struct mmu_walk w;
    pg.cr0 &= ~(uint64_t)X86_CR0_PG;
    assert_int_equal(mmu_walk(mem, &pg, 0x1234, MMU_WRITE, &w), MMU_WALK_OK);
    assert_int_equal(w.gpa, 0x1234);
}

static void read_linear_crosses_pages(void **state)
{
    (void)state;
    /* VA page 0 -> DATA page 0, page 1 -> DATA page 5: the read must follow the tables */
    set_q(PT + 8, (DATA + 0x5000) | PTE_P);
    uint8_t *ram = guest_ram_ptr(mem, DATA, 0x6000);
    ram[0xFFE] = 0x11;
    ram[0xFFF] = 0x22;
    ram[0x5000] = 0x33;
    ram[0x5001] = 0x44;
    uint8_t buf[4];
    assert_int_equal(mmu_read_linear(mem, &pg, VA + 0xFFE, buf, 4, MMU_READ, NULL), MMU_WALK_OK);
    assert_memory_equal(buf, "\x11\x22\x33\x44", 4);
    struct mmu_walk f;
    set_q(PT + 8, 0);
    assert_int_equal(mmu_read_linear(mem, &pg, VA + 0xFFE, buf, 4, MMU_READ, &f),
                     MMU_WALK_PAGE_FAULT);
    assert_int_equal(f.gla, VA + 0x1000); /* CR2 is the first byte that cannot be read */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(platform_identity_map_uses_2m_pages, reset),
        cmocka_unit_test_setup(four_k_page_translates_and_sets_a_then_d, reset),
        cmocka_unit_test_setup(inspection_sets_nothing, reset),
        cmocka_unit_test_setup(not_present_error_codes, reset),
        cmocka_unit_test_setup(write_protect_honours_cr0_wp, reset),
        cmocka_unit_test_setup(execute_disable, reset),
        cmocka_unit_test_setup(reserved_bits_fault_with_rsvd, reset),
        cmocka_unit_test_setup(two_m_and_one_g_pages, reset),
        cmocka_unit_test_setup(recursive_pml4_entry, reset),
        cmocka_unit_test_setup(tables_outside_ram_read_as_not_present, reset),
        cmocka_unit_test_setup(noncanonical_is_not_a_page_fault, reset),
        cmocka_unit_test_setup(smep_and_smap, reset),
        cmocka_unit_test_setup(paging_off_is_identity, reset),
        cmocka_unit_test_setup(read_linear_crosses_pages, reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
