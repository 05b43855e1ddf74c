/* test_x86_decode.c - the Zydis wrapper, the classifier, and Zydis cross-checked against
 * Capstone (an independent decoder) on instruction lengths. */
#include <capstone/capstone.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "emu/x86_decode.h"

struct sample {
    const char *bytes;
    unsigned len;
    enum emu_class cls;
};

static const struct sample samples[] = {
    {"\xfa", 1, EMU_CLASS_CLI},
    {"\xfb", 1, EMU_CLASS_STI},
    {"\xf4", 1, EMU_CLASS_HLT},
    {"\xe4\x60", 2, EMU_CLASS_IN},
    {"\xec", 1, EMU_CLASS_IN},
    {"\xe6\xe9", 2, EMU_CLASS_OUT},
    {"\xef", 1, EMU_CLASS_OUT},
    {"\x6c", 1, EMU_CLASS_INS},
    {"\xf3\x6e", 2, EMU_CLASS_OUTS},
    {"\x0f\x22\xd8", 3, EMU_CLASS_MOV_CR},
    {"\x0f\x20\xc0", 3, EMU_CLASS_MOV_CR},
    {"\x44\x0f\x20\xc0", 4, EMU_CLASS_MOV_CR}, /* mov rax, cr8 */
    {"\x0f\x23\xf8", 3, EMU_CLASS_MOV_DR},
    {"\x0f\x01\x10", 3, EMU_CLASS_LGDT},
    {"\x0f\x01\x18", 3, EMU_CLASS_LIDT},
    {"\x0f\x00\xd0", 3, EMU_CLASS_LLDT},
    {"\x0f\x00\xd8", 3, EMU_CLASS_LTR},
    {"\x0f\x01\xf0", 3, EMU_CLASS_LMSW},
    {"\x0f\x06", 2, EMU_CLASS_CLTS},
    {"\x0f\x32", 2, EMU_CLASS_RDMSR},
    {"\x0f\x30", 2, EMU_CLASS_WRMSR},
    {"\x0f\x01\x38", 3, EMU_CLASS_INVLPG},
    {"\x0f\x09", 2, EMU_CLASS_WBINVD},
    {"\x0f\x33", 2, EMU_CLASS_RDPMC},
    {"\x0f\x01\xf8", 3, EMU_CLASS_SWAPGS},
    {"\x48\xcf", 2, EMU_CLASS_IRET},
    {"\xcd\x21", 2, EMU_CLASS_INT},
    {"\xcc", 1, EMU_CLASS_INT3},
    {"\x0f\x05", 2, EMU_CLASS_SYSCALL},
    {"\x0f\x34", 2, EMU_CLASS_SYSENTER},
    {"\x48\x0f\x07", 3, EMU_CLASS_SYSRET},
    {"\x48\xff\x18", 3, EMU_CLASS_FAR_CALL},
    {"\x48\xff\x28", 3, EMU_CLASS_FAR_JMP},
    {"\x48\xcb", 2, EMU_CLASS_FAR_RET},
    {"\x0f\x01\x00", 3, EMU_CLASS_SGDT},
    {"\x0f\x01\x08", 3, EMU_CLASS_SIDT},
    {"\x0f\x00\xc0", 3, EMU_CLASS_SLDT},
    {"\x0f\x00\xc8", 3, EMU_CLASS_STR},
    {"\x0f\x01\xe0", 3, EMU_CLASS_SMSW},
    {"\x9c", 1, EMU_CLASS_PUSHF},
    {"\x9d", 1, EMU_CLASS_POPF},
    {"\x66\x9c", 2, EMU_CLASS_PUSHF},
    {"\x0f\x02\xc1", 3, EMU_CLASS_LAR},
    {"\x0f\x03\xc1", 3, EMU_CLASS_LSL},
    {"\x0f\x00\xe0", 3, EMU_CLASS_VERR},
    {"\x0f\x00\xe8", 3, EMU_CLASS_VERW},
    {"\x8e\xd8", 2, EMU_CLASS_MOV_TO_SEG},
    {"\x8c\xc8", 2, EMU_CLASS_MOV_FROM_SEG},
    {"\x0f\xa0", 2, EMU_CLASS_PUSH_SEG},
    {"\x0f\xa9", 2, EMU_CLASS_POP_SEG},
    {"\xf3\x48\x0f\xae\xd0", 5, EMU_CLASS_FSGSBASE},
    {"\x0f\xa2", 2, EMU_CLASS_CPUID},
    {"\x0f\x31", 2, EMU_CLASS_RDTSC},
    {"\x0f\x01\xf9", 3, EMU_CLASS_RDTSCP},
    /* innocuous */
    {"\x48\x89\xc3", 3, EMU_CLASS_NONE},
    {"\xff\xd0", 2, EMU_CLASS_NONE}, /* call rax */
    {"\xc3", 1, EMU_CLASS_NONE},
    {"\xe9\x00\x00\x00\x00", 5, EMU_CLASS_NONE},
    {"\x8e\xc0", 2, EMU_CLASS_MOV_TO_SEG},
    {"\x48\x8b\x05\x10\x00\x00\x00", 7, EMU_CLASS_NONE},
    {"\x50", 1, EMU_CLASS_NONE},
    {"\x0f\xa2", 2, EMU_CLASS_CPUID},
};

static void classifies_every_sensitive_class(void **unused)
{
    (void)unused;
    struct x86_decoder dec;
    x86_decoder_init(&dec);
    for (unsigned i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        struct x86_decoded_insn insn;
        assert_int_equal(x86_decode(&dec, samples[i].bytes, samples[i].len, 0x40200000, &insn), 0);
        assert_int_equal(insn.length, samples[i].len);
        assert_int_equal(insn.rip, 0x40200000);
        assert_memory_equal(insn.bytes, samples[i].bytes, samples[i].len);
        if (x86_classify(&insn) != samples[i].cls) {
            char text[64];
            x86_format(&insn, text, sizeof(text));
            fail_msg("sample %u (%s): class %d, expected %d", i, text, x86_classify(&insn),
                     samples[i].cls);
        }
    }
}

static void bad_bytes_are_errors(void **unused)
{
    (void)unused;
    struct x86_decoder dec;
    x86_decoder_init(&dec);
    struct x86_decoded_insn insn;
    assert_int_equal(x86_decode(&dec, "\xff\xff", 2, 0, &insn), -EILSEQ);
    assert_int_equal(x86_decode(&dec, "\x48", 1, 0, &insn), -ENODATA); /* truncated */
    assert_int_equal(x86_decode(&dec, "\xea\x00\x00\x00\x00\x08\x00", 7, 0, &insn), -EILSEQ);
    char text[32];
    assert_int_equal(x86_decode(&dec, "\xfa", 1, 0x1000, &insn), 0);
    x86_format(&insn, text, sizeof(text));
    assert_string_equal(text, "cli");
}

static void every_class_has_a_name_and_category(void **unused)
{
    (void)unused;
    for (unsigned c = 1; c < EMU_CLASS_COUNT; c++) {
        const struct emu_class_info *i = emu_class_info(c);
        assert_non_null(i->name);
        assert_true(strlen(i->reference) > 0);
        assert_true(i->category != PG_INNOCUOUS);
        assert_string_not_equal(pg_category_name(i->category), "?");
    }
    assert_string_equal(emu_class_info(9999)->name, "none");
    assert_int_equal(emu_class_info(EMU_CLASS_POPF)->category, PG_SENSITIVE_UNPRIVILEGED);
    assert_int_equal(emu_class_info(EMU_CLASS_CLI)->category, PG_PRIVILEGED);
}

/* Zydis and Capstone must agree on where instructions start and end over real code: a linear
 * sweep over this test binary's own text. */
extern char __executable_start[], etext[];

static void zydis_agrees_with_capstone_on_lengths(void **unused)
{
    (void)unused;
    struct x86_decoder dec;
    x86_decoder_init(&dec);
    csh cs;
    assert_int_equal(cs_open(CS_ARCH_X86, CS_MODE_64, &cs), CS_ERR_OK);
    const uint8_t *code = (const uint8_t *)(uintptr_t)&classifies_every_sensitive_class;
    size_t n = 4096, off = 0, compared = 0;
    while (off < n && compared < 600) {
        struct x86_decoded_insn insn;
        cs_insn *ci = NULL;
        int zr = x86_decode(&dec, code + off, n - off, (uint64_t)(uintptr_t)(code + off), &insn);
        size_t cn = cs_disasm(cs, code + off, n - off, (uint64_t)(uintptr_t)(code + off), 1, &ci);
        if (zr == 0 && cn == 1) {
            assert_int_equal(insn.length, ci->size);
            compared++;
            off += insn.length;
        } else {
            off++; /* padding or data between functions: both may stop here */
        }
        if (ci)
            cs_free(ci, cn);
    }
    cs_close(&cs);
    assert_true(compared >= 200);
    (void)__executable_start;
    (void)etext;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classifies_every_sensitive_class),
        cmocka_unit_test(bad_bytes_are_errors),
        cmocka_unit_test(every_class_has_a_name_and_category),
        cmocka_unit_test(zydis_agrees_with_capstone_on_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
