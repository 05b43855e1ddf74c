/* test_mmio_emulate.c - MMIO data moves decoded from faulting instructions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/guest_layout.h"
#include "vmm/mmio_emulate.h"

static struct x86_decoded_insn decode(const uint8_t *bytes, size_t n)
{
    struct x86_decoded_insn insn;
    ZydisDecoder dec;
    memset(&insn, 0, sizeof(insn));
    ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    assert_true(ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, bytes, n, &insn.info, insn.operands)));
    insn.length = insn.info.length;
    insn.rip = GUEST_IMAGE_BASE;
    memcpy(insn.bytes, bytes, insn.length);
    return insn;
}

static void stores_carry_register_and_immediate_data(void **unused)
{
    (void)unused;
    struct vcpu_state s;
    memset(&s, 0, sizeof(s));
    s.rip = GUEST_IMAGE_BASE;
    s.gpr[X86_RAX] = 0x1122334455667788ULL;
    struct mmio_access a;
    /* mov %rax, (%rbx) */
    struct x86_decoded_insn i = decode((const uint8_t *)"\x48\x89\x03", 3);
    assert_int_equal(mmio_decode(&i, &s, MMIO_SCRATCH, &a), 0);
    assert_true(a.is_write);
    assert_int_equal(a.len, 8);
    assert_memory_equal(a.data, "\x88\x77\x66\x55\x44\x33\x22\x11", 8);
    /* movb $0x5a, (%rbx) */
    i = decode((const uint8_t *)"\xc6\x03\x5a", 3);
    assert_int_equal(mmio_decode(&i, &s, MMIO_SCRATCH, &a), 0);
    assert_int_equal(a.len, 1);
    assert_int_equal(a.data[0], 0x5a);
    /* mov %ah, (%rbx): a high-byte register */
    i = decode((const uint8_t *)"\x88\x23", 2);
    assert_int_equal(mmio_decode(&i, &s, MMIO_SCRATCH, &a), 0);
    assert_int_equal(a.data[0], 0x77);
    mmio_complete(&i, &a, &s, NULL);
    assert_int_equal(s.rip, GUEST_IMAGE_BASE + 2);
}

static void loads_write_the_destination_with_x86_width_rules(void **unused)
{
    (void)unused;
    struct vcpu_state s;
    memset(&s, 0, sizeof(s));
    s.gpr[X86_RCX] = ~0ULL;
    struct mmio_access a;
    const uint8_t data[8] = {0xF0, 0xDE, 0xBC, 0x9A, 0x78, 0x56, 0x34, 0x12};
    /* mov (%rbx), %ecx: 32-bit destination zero-extends */
    struct x86_decoded_insn i = decode((const uint8_t *)"\x8b\x0b", 2);
    assert_int_equal(mmio_decode(&i, &s, MMIO_SCRATCH, &a), 0);
    assert_false(a.is_write);
    assert_int_equal(a.len, 4);
    mmio_complete(&i, &a, &s, data);
    assert_int_equal(s.gpr[X86_RCX], 0x9ABCDEF0ULL);
    /* mov (%rbx), %cx: 16-bit destination merges */
    s.gpr[X86_RCX] = 0xFFFFFFFFFFFFFFFFULL;
    i = decode((const uint8_t *)"\x66\x8b\x0b", 3);
    assert_int_equal(mmio_decode(&i, &s, MMIO_SCRATCH, &a), 0);
    mmio_complete(&i, &a, &s, data);
    assert_int_equal(s.gpr[X86_RCX], 0xFFFFFFFFFFFFDEF0ULL);
    /* movsbq (%rbx), %rdx: sign extension */
    i = decode((const uint8_t *)"\x48\x0f\xbe\x13", 4);
    assert_int_equal(mmio_decode(&i, &s, MMIO_SCRATCH, &a), 0);
    assert_int_equal(a.len, 1);
    mmio_complete(&i, &a, &s, data);
    assert_int_equal(s.gpr[X86_RDX], 0xFFFFFFFFFFFFFFF0ULL);
}

static void other_instructions_are_refused(void **unused)
{
    (void)unused;
    struct vcpu_state s;
    memset(&s, 0, sizeof(s));
    struct mmio_access a;
    /* add %eax, (%rbx): a read-modify-write vmlab does not emulate on MMIO */
    struct x86_decoded_insn i = decode((const uint8_t *)"\x01\x03", 2);
    assert_int_equal(mmio_decode(&i, &s, MMIO_SCRATCH, &a), -EOPNOTSUPP);
    /* movsb: string move */
    i = decode((const uint8_t *)"\xa4", 1);
    assert_int_equal(mmio_decode(&i, &s, MMIO_SCRATCH, &a), -EOPNOTSUPP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stores_carry_register_and_immediate_data),
        cmocka_unit_test(loads_write_the_destination_with_x86_width_rules),
        cmocka_unit_test(other_instructions_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
