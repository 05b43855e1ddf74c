/* test_bench_peers.c - the peer programs of the peers and dbt_speed experiments: how a run of
 * `vmlab __compute-peer` (natively or under a tool) is read, and what a missing tool says -
 * DynamoRIO is optional, so "not installed" must name the way to get it, and a tool that
 * itself exits with 127 must not pass for a missing one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/bench_internal.h"

static int run(char *const argv[], double *ns, uint64_t *sum, char *why, size_t size)
{
    why[0] = 0;
    return bench_run_peer_program(argv, BENCH_DRRUN_MISSING, 60, ns, sum, why, size);
}

static void missing_tool_says_how_to_get_it(void **unused)
{
    (void)unused;
    char why[BENCH_WHY_SIZE];
    double ns = -1;
    uint64_t sum = 0;
    char *argv[] = {"/nonexistent/vmlab-test/drrun", "--", "true", NULL};
    assert_int_equal(run(argv, &ns, &sum, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "/nonexistent/vmlab-test/drrun is not installed"));
    assert_non_null(strstr(why, "Debian does not package DynamoRIO"));
    assert_non_null(strstr(why, "VMLAB_DRRUN"));
}

static void exit_127_of_the_tool_is_a_failure(void **unused)
{
    (void)unused;
    char why[BENCH_WHY_SIZE];
    double ns;
    uint64_t sum;
    char *argv[] = {"/bin/sh", "-c", "exit 127", NULL};
    assert_int_equal(run(argv, &ns, &sum, why, sizeof(why)), -1);
    assert_null(strstr(why, "not installed"));
    assert_non_null(strstr(why, "failed (exit status 127)"));
}

static void output_is_checksum_and_ns(void **unused)
{
    (void)unused;
    char why[BENCH_WHY_SIZE];
    double ns = 0;
    uint64_t sum = 0;
    char *argv[] = {"/bin/sh", "-c", "echo 'deadbeef12 4567'", NULL};
    assert_int_equal(run(argv, &ns, &sum, why, sizeof(why)), 0);
    assert_true(sum == 0xdeadbeef12ULL);
    assert_true(ns == 4567);
    char *bad[] = {"/bin/sh", "-c", "echo 'no numbers here'", NULL};
    assert_int_equal(run(bad, &ns, &sum, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "failed (exit status 0)"));
}

/* A tool that hangs is killed at the limit, with what it started, and said so */
static void hung_tool_is_killed(void **unused)
{
    (void)unused;
    char why[BENCH_WHY_SIZE] = "";
    double ns;
    uint64_t sum;
    char *argv[] = {"/bin/sh", "-c", "sleep 60 & echo $! > /dev/null; sleep 60", NULL};
    double t0 = bench_now_s();
    assert_int_equal(bench_run_peer_program(argv, NULL, 0.3, &ns, &sum, why, sizeof(why)), -1);
    assert_true(bench_now_s() - t0 < 10);
    assert_non_null(strstr(why, "/bin/sh did not finish within 0.3 s (killed)"));
    /* one that prints its result, closes its output and then hangs is killed too */
    char *quiet[] = {"/bin/sh", "-c", "echo '1 2'; exec >&-; sleep 60", NULL};
    t0 = bench_now_s();
    assert_int_equal(bench_run_peer_program(quiet, NULL, 0.3, &ns, &sum, why, sizeof(why)), -1);
    assert_true(bench_now_s() - t0 < 10);
    assert_non_null(strstr(why, "did not finish within 0.3 s (killed)"));
}

/* The steady-state form that dbt_speed runs under DynamoRIO: a warm-up call does not change
 * the timed call's checksum (each call builds the workload's state afresh), and a bad
 * argument count is a usage error. */
static void warmup_keeps_the_checksum(void **unused)
{
    (void)unused;
    char why[BENCH_WHY_SIZE];
    double ns_plain, ns_warm;
    uint64_t plain = 0, warm = 1;
    char *a[] = {VMLAB_EXE, "__compute-peer", "indirect", "3", NULL};
    char *b[] = {VMLAB_EXE, "__compute-peer", "indirect", "3", "7", NULL};
    assert_int_equal(run(a, &ns_plain, &plain, why, sizeof(why)), 0);
    assert_int_equal(run(b, &ns_warm, &warm, why, sizeof(why)), 0);
    assert_true(plain == warm);
    assert_true(ns_plain > 0 && ns_warm > 0);
    char *c[] = {VMLAB_EXE, "__compute-peer", "indirect", "3", "7", "9", NULL};
    assert_int_equal(run(c, &ns_plain, &plain, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "failed (exit status 64)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(missing_tool_says_how_to_get_it),
        cmocka_unit_test(exit_127_of_the_tool_is_a_failure),
        cmocka_unit_test(output_is_checksum_and_ns),
        cmocka_unit_test(hung_tool_is_killed),
        cmocka_unit_test(warmup_keeps_the_checksum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
