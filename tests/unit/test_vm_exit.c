/* test_vm_exit.c - exit-record names and descriptions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/vm_exit.h"

static void every_reason_has_a_distinct_name(void **state)
{
    (void)state;
    for (unsigned i = 0; i <= VM_EXIT_REASON_MAX_VALUE; i++) {
        const char *a = vm_exit_reason_name(i);
        assert_non_null(a);
        assert_string_not_equal(a, "UNKNOWN");
        for (unsigned j = 0; j < i; j++)
            assert_string_not_equal(a, vm_exit_reason_name(j));
    }
    assert_string_equal(vm_exit_reason_name(VM_EXIT_HLT), "HLT");
    assert_string_equal(vm_exit_reason_name(VM_EXIT_SHUTDOWN), "SHUTDOWN");
    assert_string_equal(vm_exit_reason_name(VM_EXIT_REASON_MAX_VALUE + 1), "UNKNOWN");
    assert_string_equal(vm_exit_reason_name(0xFFFFFFFFu), "UNKNOWN");
}

static void descriptions_name_the_facts(void **state)
{
    (void)state;
    struct vm_exit e;
    char buf[256];
    memset(&e, 0, sizeof(e));
    e.reason = VM_EXIT_EXCEPTION;
    e.rip = 0x40201000;
    e.exception.vector = 0;
    vm_exit_describe(&e, buf, sizeof(buf));
    assert_non_null(strstr(buf, "#DE"));
    assert_non_null(strstr(buf, "0x40201000"));
    assert_non_null(strstr(buf, "no guest handler"));

    e.exception.vector = 14;
    e.exception.has_error_code = 1;
    e.exception.error_code = 2;
    e.exception.cr2 = 0x1000;
    vm_exit_describe(&e, buf, sizeof(buf));
    assert_non_null(strstr(buf, "#PF"));
    assert_non_null(strstr(buf, "cr2 0x1000"));

    memset(&e, 0, sizeof(e));
    e.reason = VM_EXIT_HLT;
    vm_exit_describe(&e, buf, sizeof(buf));
    assert_non_null(strstr(buf, "interrupts disabled"));
    e.hlt.interrupts_enabled = 1;
    vm_exit_describe(&e, buf, sizeof(buf));
    assert_non_null(strstr(buf, "nothing pending"));

    memset(&e, 0, sizeof(e));
    e.reason = VM_EXIT_INTERNAL_ERROR;
    strcpy(e.internal.message, "emulation failure");
    vm_exit_describe(&e, buf, sizeof(buf));
    assert_non_null(strstr(buf, "emulation failure"));

    /* A small buffer truncates instead of overflowing. */
    char tiny[8];
    memset(tiny, 'x', sizeof(tiny));
    vm_exit_describe(&e, tiny, sizeof(tiny));
    assert_int_equal(strlen(tiny), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_reason_has_a_distinct_name),
        cmocka_unit_test(descriptions_name_the_facts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
