/* bench_stats.c - medians and spread of repeated measurements. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Linear interpolation between closest ranks (the "type 7" quantile). */
static double quantile(const double *sorted, unsigned n, double q)
{
    double pos = q * (n - 1);
    unsigned i = (unsigned)pos;
    double frac = pos - i;
    return i + 1 < n ? sorted[i] + frac * (sorted[i + 1] - sorted[i]) : sorted[i];
}

void bench_stats_of(const double *samples, unsigned n, struct bench_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!n)
        return;
    double *s = malloc(n * sizeof(double));
    if (!s)
        return;
    memcpy(s, samples, n * sizeof(double));
    qsort(s, n, sizeof(double), cmp_double);
    out->n = n;
    out->min = s[0];
    out->max = s[n - 1];
    out->median = quantile(s, n, 0.5);
    out->q1 = quantile(s, n, 0.25);
    out->q3 = quantile(s, n, 0.75);
    free(s);
}

double bench_crossover_first(const double *m, const double *trap, const double *dbt, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (dbt[i] <= trap[i])
            return m[i];
    return 0;
}

double bench_median(const double *samples, unsigned n)
{
    struct bench_stats s;
    bench_stats_of(samples, n, &s);
    return s.median;
}

double bench_crossover_interpolated(const double *m, const double *trap, const double *dbt,
                                    unsigned n, enum bench_crossing *where)
{
    for (unsigned i = 0; i < n; i++) {
        if (dbt[i] > trap[i])
            continue;
        if (i == 0) {
            *where = BENCH_CROSS_BELOW;
            return m[0];
        }
        double g0 = dbt[i - 1] - trap[i - 1], g1 = dbt[i] - trap[i]; /* g0 > 0 >= g1 */
        *where = BENCH_CROSS_INSIDE;
        return m[i - 1] + (m[i] - m[i - 1]) * g0 / (g0 - g1);
    }
    *where = BENCH_CROSS_ABOVE;
    return 0;
}
