/* test_platform.c - the platform area every guest starts with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/guest_layout.h"
#include "vmm/guest_memory.h"
#include "vmm/platform.h"

static struct guest_memory *mem;

static int setup(void **state)
{
    (void)state;
    if (guest_memory_create(0, &mem) < 0)
        return -1;
    platform_setup(mem);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    guest_memory_destroy(mem);
    return 0;
}

static uint64_t q(uint64_t gpa)
{
    uint64_t v;
    assert_int_equal(guest_ram_read(mem, gpa, &v, 8), 0);
    return v;
}

static void gdt_matches_the_guest_model(void **state)
{
    (void)state;
    uint64_t gdt = GUEST_RAM_BASE + GUEST_GDT_OFFSET;
    assert_int_equal(q(gdt), 0);
    assert_int_equal(q(gdt + GUEST_SEL_CODE64), 0x00AF9B000000FFFFULL);
    assert_int_equal(q(gdt + GUEST_SEL_DATA), 0x00CF93000000FFFFULL);
    uint64_t tss_lo = q(gdt + GUEST_SEL_TSS), tss_hi = q(gdt + GUEST_SEL_TSS + 8);
    uint64_t base = ((tss_lo >> 16) & 0xFFFFFF) | (((tss_lo >> 56) & 0xFF) << 24) | (tss_hi << 32);
    assert_int_equal(base, GUEST_RAM_BASE + GUEST_TSS_OFFSET);
    assert_int_equal((tss_lo >> 40) & 0xF, 0xB); /* busy 64-bit TSS */
    assert_int_equal((tss_lo >> 47) & 1, 1);     /* present */
}

static void idt_points_every_vector_at_its_stub(void **state)
{
    (void)state;
    uint64_t idt = GUEST_RAM_BASE + GUEST_IDT_OFFSET;
    for (unsigned v = 0; v < 256; v++) {
        uint64_t lo = q(idt + 16 * v), hi = q(idt + 16 * v + 8);
        uint64_t target = (lo & 0xFFFF) | (((lo >> 48) & 0xFFFF) << 16) | (hi << 32);
        assert_int_equal(target, GUEST_RAM_BASE + GUEST_STUBS_OFFSET + 16 * v);
        assert_int_equal((lo >> 16) & 0xFFFF, GUEST_SEL_CODE64);
        assert_int_equal((lo >> 40) & 0xF, 0xE);
        assert_int_equal((lo >> 47) & 1, 1);
    }
    /* stub 0 (#DE, no error code): push $0 (dummy error code, 6a 00), push $0 (vector) */
    const uint8_t *stub0 = guest_ram_ptr(mem, GUEST_RAM_BASE + GUEST_STUBS_OFFSET, 16);
    assert_memory_equal(stub0, "\x6a\x00\x6a\x00", 4);
    /* stub 14 (#PF, the CPU pushed the error code): only push $14 */
    const uint8_t *stub14 = guest_ram_ptr(mem, GUEST_RAM_BASE + GUEST_STUBS_OFFSET + 16 * 14, 16);
    assert_memory_equal(stub14, "\x6a\x0e\xe9", 3);
    /* stub 200: vectors >= 128 need push imm32 (imm8 would sign-extend) */
    const uint8_t *stub200 = guest_ram_ptr(mem, GUEST_RAM_BASE + GUEST_STUBS_OFFSET + 16 * 200, 16);
    assert_memory_equal(stub200, "\x6a\x00\x68\xc8\x00\x00\x00", 7);
    assert_true(platform_vector_has_error_code(14));
    assert_false(platform_vector_has_error_code(3));
}

static void page_tables_identity_map_the_guest_space(void **state)
{
    (void)state;
    uint64_t pml4 = GUEST_RAM_BASE + GUEST_PT_OFFSET;
    uint64_t pdpt = q(pml4) & ~0xFFFULL;
    assert_int_equal(q(pml4) & 1, 1);
    assert_int_equal(q(pdpt) & 1, 0); /* [0, 1 GiB) not present: #PF there */
    uint64_t pd = q(pdpt + 8) & ~0xFFFULL;
    for (unsigned i = 0; i < 512; i++) {
        uint64_t e = q(pd + 8 * i);
        if (i < (GUEST_SPACE_SIZE >> 21)) {
            assert_int_equal(e & ~0xFFFULL, GUEST_SPACE_BASE + ((uint64_t)i << 21));
            assert_int_equal(e & 0x83, 0x83); /* present, writable, 2 MiB */
        } else {
            assert_int_equal(e, 0); /* beyond the guest space: not present */
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gdt_matches_the_guest_model),
        cmocka_unit_test(idt_points_every_vector_at_its_stub),
        cmocka_unit_test(page_tables_identity_map_the_guest_space),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
