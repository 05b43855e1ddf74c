/* bench_host.c - host facts every experiment and the report header use: CPU, kernel, TSC
 * rate, the kernel floor of a trap, and what each backend can do on this host. */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "bench.h"

static void read_cpu_model(char *buf, size_t size)
{
    snprintf(buf, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                snprintf(buf, size, "%s", p + 2);
                buf[strcspn(buf, "\n")] = 0;
            }
            break;
        }
    fclose(f);
}

static uint64_t rdtsc(void)
{
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void floor_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    uc->uc_mcontext.gregs[REG_RIP] += 1; /* skip the 1-byte CLI: an empty emulation */
}

void bench_measure_host(struct bench_host *h, const struct bench_options *o)
{
    read_cpu_model(h->cpu, sizeof(h->cpu));
    struct utsname u;
    uname(&u);
    snprintf(h->kernel, sizeof(h->kernel), "Linux %s %s", u.release, u.machine);
    time_t t = time(NULL);
    strftime(h->date, sizeof(h->date), "%Y-%m-%d %H:%M UTC", gmtime(&t));
    /* TSC frequency, against the monotonic clock over 100 ms */
    uint64_t c0 = rdtsc();
    double t0 = bench_now_s();
    while (bench_now_s() - t0 < 0.1) {
    }
    h->tsc_ghz = (double)(rdtsc() - c0) / ((bench_now_s() - t0) * 1e9);

    /* Kernel floor: a CLI at CPL 3 -> #GP -> SIGSEGV -> handler that only skips it. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = floor_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, &old);
    unsigned reps = o->repetitions, n = o->quick ? 2000 : 10000;
    double samples[32];
    for (unsigned r = 0; r < reps; r++) { /* CPU time, like every guest measurement */
        double a = thread_cpu_s();
        for (unsigned i = 0; i < n; i++)
            __asm__ volatile("cli" ::: "memory");
        samples[r] = (thread_cpu_s() - a) * 1e9 / n;
    }
    sigaction(SIGSEGV, &old, NULL);
    bench_stats_of(samples, reps, &h->signal_round_trip_ns);
    n = o->quick ? 20000 : 100000;
    for (unsigned r = 0; r < reps; r++) {
        double a = thread_cpu_s();
        for (unsigned i = 0; i < n; i++)
            syscall(SYS_getppid);
        samples[r] = (thread_cpu_s() - a) * 1e9 / n;
    }
    bench_stats_of(samples, reps, &h->syscall_ns);

    const struct backend_ops *const *list = backend_list();
    for (unsigned b = 0; b < BENCH_MAX_BACKENDS && list[b]; b++) {
        h->backend[b] = list[b];
        h->backend_name[b] = list[b]->name;
        h->backend_count = b + 1;
        char reason[256] = "";
        h->backend_available[b] = list[b]->probe(reason, sizeof(reason)) == 0;
        if (!h->backend_available[b])
            snprintf(h->backend_note[b], sizeof(h->backend_note[b]), "%s", reason);
        else if (list[b]->describe_host)
            list[b]->describe_host(h->backend_note[b], sizeof(h->backend_note[b]));
        if (h->backend_available[b] && strstr(h->backend_note[b], "kvm_pvm"))
            h->kvm_is_pvm = true;
    }
}

int bench_backend_index(const struct bench_host *h, const char *name)
{
    for (unsigned b = 0; b < h->backend_count; b++)
        if (!strcmp(h->backend_name[b], name))
            return (int)b;
    return -1;
}
