/* test_bench_stats.c - medians and quartiles of the benchmark harness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "bench/bench.h"

static void quartiles_interpolate(void **unused)
{
    (void)unused;
    const double s[] = {9, 1, 5, 3, 7}; /* sorted: 1 3 5 7 9 */
    struct bench_stats st;
    bench_stats_of(s, 5, &st);
    assert_int_equal(st.n, 5);
    assert_true(st.median == 5 && st.min == 1 && st.max == 9);
    assert_true(st.q1 == 3 && st.q3 == 7);
    const double e[] = {4, 1, 2, 3}; /* 1 2 3 4: median 2.5, Q1 1.75, Q3 3.25 */
    bench_stats_of(e, 4, &st);
    assert_true(st.median == 2.5 && st.q1 == 1.75 && st.q3 == 3.25);
    bench_stats_of(e, 1, &st);
    assert_true(st.median == 4 && st.q1 == 4 && st.q3 == 4);
    bench_stats_of(e, 0, &st);
    assert_int_equal(st.n, 0);
}

/* Synthetic sweep: trap grows by h = 100 per execution, dbt pays B = 250 once plus p = 10. */
static void crossover_synthetic(void **unused)
{
    (void)unused;
    double m[6] = {1, 2, 3, 4, 8, 16}, t[6], d[6];
    for (int i = 0; i < 6; i++) {
        t[i] = 100 * m[i];
        d[i] = 250 + 10 * m[i];
    }
    /* 250 / (100 - 10) = 2.8: first sweep point at or past it is 3 */
    assert_true(bench_crossover_first(m, t, d, 6) == 3);
    assert_true(bench_crossover_first(m, t, d, 2) == 0); /* never within a short sweep */
    d[0] = t[0];                                         /* a tie counts as dbt not slower */
    assert_true(bench_crossover_first(m, t, d, 6) == 1);
    assert_true(bench_crossover_first(m, t, d, 0) == 0);
}

/* Interpolated crossover: the curves are lines in m, so the root of dbt - trap between two
 * grid points is exact. trap = 100 m, dbt = 250 + 10 m cross at 250 / 90 = 2.78. */
static void crossover_interpolated_exact(void **unused)
{
    (void)unused;
    double m[6] = {1, 2, 4, 8, 16, 32}, t[6], d[6];
    for (int i = 0; i < 6; i++) {
        t[i] = 100 * m[i];
        d[i] = 250 + 10 * m[i];
    }
    enum bench_crossing w;
    double x = bench_crossover_interpolated(m, t, d, 6, &w);
    assert_int_equal(w, BENCH_CROSS_INSIDE);
    assert_true(x > 2.7777 && x < 2.7778);
    /* dbt already faster at the first point: below the sweep */
    x = bench_crossover_interpolated(m + 2, t + 2, d + 2, 4, &w);
    assert_int_equal(w, BENCH_CROSS_BELOW);
    assert_true(x == 4);
    /* never within the sweep: above it */
    x = bench_crossover_interpolated(m, t, d, 2, &w);
    assert_int_equal(w, BENCH_CROSS_ABOVE);
    assert_true(x == 0);
    /* an exact tie at a grid point is the crossover itself */
    d[3] = t[3];
    d[2] = t[2] + 50;
    x = bench_crossover_interpolated(m, t, d, 6, &w);
    assert_int_equal(w, BENCH_CROSS_INSIDE);
    assert_true(x == 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(quartiles_interpolate),
                                       cmocka_unit_test(crossover_synthetic),
                                       cmocka_unit_test(crossover_interpolated_exact)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
