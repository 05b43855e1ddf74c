/* bench_peers.c - experiment "peers": the same compute code natively, under qemu-user (TCG),
 * under valgrind --tool=none, under DynamoRIO where it is installed, and as a guest on every
 * backend; per-iteration time relative to native. One set of rows per workload of
 * bench/workloads.def.
 *
 * A workload is a flat position-independent blob, uint64_t kernel(uint64_t iterations) at
 * offset 0 (SysV ABI). The Linux-program configurations run `vmlab __compute-peer WORKLOAD
 * N`, which copies the blob into an executable mapping and times the call with
 * CLOCK_PROCESS_CPUTIME_ID (tool start-up excluded); the guest configurations run it as raw
 * guest code between two host-timestamped marks. Every configuration's checksum after a short
 * run must equal the one computed natively in this process, or its row says WRONG RESULT.
 *
 * DynamoRIO (drrun, with no client: its default code cache, traces and indirect-branch
 * lookup) is the translator dbt's speed targets are stated against. Debian does not package
 * it, so it is optional: `drrun` on PATH, or the program VMLAB_DRRUN names; without it the row
 * says how to get it and the rest of the report is unchanged.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <ucontext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_internal.h"
#include "vmm/guest_layout.h"

#define BENCH_WORKLOAD(id, file, description)                                                      \
    extern const unsigned char bench_workload_##id##_blob[];                                       \
    extern const unsigned long bench_workload_##id##_blob_size;
#include "workloads.def"
#undef BENCH_WORKLOAD

const struct bench_workload *bench_workloads(unsigned *count)
{
    static struct bench_workload list[] = {
#define BENCH_WORKLOAD(id, file, description) {#id, description, bench_workload_##id##_blob, 0},
#include "workloads.def"
#undef BENCH_WORKLOAD
    };
    static const unsigned long *const sizes[] = {
#define BENCH_WORKLOAD(id, file, description) &bench_workload_##id##_blob_size,
#include "workloads.def"
#undef BENCH_WORKLOAD
    };
    *count = sizeof(list) / sizeof(list[0]);
    for (unsigned i = 0; i < *count; i++)
        list[i].size = *sizes[i];
    return list;
}

static const struct bench_workload *workload_find(const char *name)
{
    unsigned count;
    const struct bench_workload *w = bench_workloads(&count);
    for (unsigned i = 0; i < count; i++)
        if (!strcmp(w[i].name, name))
            return &w[i];
    return NULL;
}

typedef bench_kernel_fn kernel_fn;

static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- counting the instructions a workload executes -----------------------------------------
 * Natively, by single-stepping: RFLAGS.TF makes the CPU raise #DB after every instruction
 * (Intel SDM vol. 3A 18.3.1.4), which Linux delivers as SIGTRAP with the next RIP. Each trap
 * whose RIP lies inside the blob is one blob instruction about to execute; the first trap
 * outside it after entering ends the count and clears TF. Slow (a signal per instruction), so
 * only for a couple of iterations. */
static volatile uint64_t step_count;
static volatile sig_atomic_t step_entered;
static uintptr_t step_lo, step_hi;

static void step_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    uintptr_t rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    if (rip >= step_lo && rip < step_hi) {
        step_entered = 1;
        step_count++;
    } else if (step_entered) {
        uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)0x100; /* TF off */
    }
}

__attribute__((noinline)) static uint64_t call_stepped(kernel_fn *f, uint64_t n)
{
    __asm__ volatile("pushfq; orq $0x100, (%%rsp); popfq" ::: "memory", "cc");
    uint64_t sum = f(n);
    __asm__ volatile("pushfq; andq $~0x100, (%%rsp); popfq" ::: "memory", "cc");
    return sum;
}

static uint64_t count_insns_natively(kernel_fn *f, unsigned long size, uint64_t n)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = step_handler;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGTRAP, &sa, &old) < 0)
        return 0;
    step_lo = (uintptr_t)f;
    step_hi = step_lo + size;
    step_count = 0;
    step_entered = 0;
    call_stepped(f, n);
    sigaction(SIGTRAP, &old, NULL);
    return step_count;
}

/* Where the guest configurations run the blob: page-aligned after one page of prologue. */
#define WORKLOAD_GUEST_ADDRESS (GUEST_IMAGE_BASE + 4096)

/* The workload copied into an executable mapping of this process (kept for its lifetime).
 * With `as_guest`, at the very address the guest runs it from when that is free (the peer
 * program; not the harness, whose children need the guest window), so that the native and
 * the guest runs share alignment and cache and branch-predictor indexing; anywhere
 * page-aligned otherwise. */
kernel_fn *bench_workload_map_native(const struct bench_workload *w, bool as_guest)
{
    size_t size = (w->size + 4095) & ~4095UL;
    void *p = MAP_FAILED;
    if (as_guest) {
        p = mmap((void *)(uintptr_t)WORKLOAD_GUEST_ADDRESS, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p != MAP_FAILED && p != (void *)(uintptr_t)WORKLOAD_GUEST_ADDRESS) {
            munmap(p, size); /* a kernel that ignored MAP_FIXED_NOREPLACE */
            p = MAP_FAILED;
        }
    }
    if (p == MAP_FAILED) /* taken (a tool's own mapping), or not asked for */
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memcpy(p, w->blob, w->size);
    if (mprotect(p, size, PROT_READ | PROT_EXEC) < 0)
        return NULL;
    return (kernel_fn *)p;
}

int bench_compute_peer_main(int argc, char **argv)
{
    if (argc < 3 || argc > 4)
        return 64;
    const struct bench_workload *w = workload_find(argv[1]);
    if (!w)
        return 64;
    uint64_t n = strtoull(argv[2], NULL, 10);
    uint64_t warmup = argc == 4 ? strtoull(argv[3], NULL, 10) : 0;
    kernel_fn *f = bench_workload_map_native(w, true);
    if (!f)
        return 70;
    if (warmup) /* steady state (dbt_speed): a translator has translated everything by now */
        f(warmup);
    /* CPU time of the process: under a translator (qemu-user, valgrind, DynamoRIO), the tool's
     * own work included */
    double t0 = process_cpu_s();
    uint64_t sum = f(n);
    double t1 = process_cpu_s();
    printf("%llx %.0f\n", (unsigned long long)sum, (t1 - t0) * 1e9);
    return 0;
}

/* ---- configurations ---------------------------------------------------------------------- */

/* A Linux-program configuration: argv with "SELF" for this program, "W" for the workload, "N"
 * for the count and "DRRUN" for DynamoRIO's launcher (bench_drrun_path); `missing` says how
 * to get argv[0] where it cannot be started. */
static const struct {
    const char *name;
    const char *missing;
    const char *argv[8];
} programs[] = {
    {"native", NULL, {"SELF", "__compute-peer", "W", "N", NULL}},
    {"qemu-user (TCG)",
     "apt-get install qemu-user",
     {"qemu-x86_64", "SELF", "__compute-peer", "W", "N", NULL}},
    {"valgrind --tool=none",
     "apt-get install valgrind",
     {"valgrind", "--tool=none", "-q", "SELF", "__compute-peer", "W", "N", NULL}},
    {"DynamoRIO (drrun)",
     BENCH_DRRUN_MISSING,
     {"DRRUN", "--", "SELF", "__compute-peer", "W", "N", NULL}},
};
#define PROGRAM_COUNT (sizeof(programs) / sizeof(programs[0]))
#define MAX_WORKLOADS 8
#define MAX_CONFIGS (PROGRAM_COUNT + BENCH_MAX_BACKENDS)

struct peer_row {
    const char *config;
    bool measured;
    char why_not[BENCH_WHY_SIZE];
    uint64_t iterations;            /* kernel iterations per run (calibrated) */
    struct bench_stats ns_per_iter; /* CPU time of the kernel itself per iteration */
    /* vtx: what KVM says it emulated in a short run, beside what the guest executed */
    double kvm_insn_emulation, kvm_exits;
    uint64_t guest_insns; /* the kernel's, counted natively, plus the guest's own around it */
    uint64_t emulation_iterations;
    uint64_t checked_iterations; /* the longest run whose checksum was compared with native */
};

struct peers_state {
    unsigned workload_count, config_count;
    const struct bench_workload *workload[MAX_WORKLOADS];
    char config_name[MAX_CONFIGS][64];
    struct peer_row row[MAX_WORKLOADS][MAX_CONFIGS];
};

const char *bench_drrun_path(void)
{
    const char *env = getenv("VMLAB_DRRUN");
    return env && env[0] ? env : "drrun";
}

/* The child reports a failed exec's errno through a close-on-exec pipe, so that a tool which
 * itself exits with 127 is not taken for an absent one. The child leads a process group of
 * its own: a run past `timeout_s` (a tool that hangs) is killed with whatever it started. */
int bench_run_peer_program(char *const argv[], const char *missing, double timeout_s, double *ns,
                           uint64_t *checksum, char *why, size_t why_size)
{
    int fds[2], exec_fds[2];
    if (pipe(fds) < 0) {
        snprintf(why, why_size, "pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(exec_fds, O_CLOEXEC) < 0) {
        snprintf(why, why_size, "pipe: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_size, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        close(exec_fds[0]);
        close(exec_fds[1]);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        close(exec_fds[0]);
        if (!freopen("/dev/null", "w", stderr))
            _exit(126);
        execvp(argv[0], argv);
        int err = errno;
        ssize_t unused = write(exec_fds[1], &err, sizeof(err));
        (void)unused;
        _exit(127);
    }
    setpgid(pid, 0); /* as the child does: whichever runs first */
    close(fds[1]);
    close(exec_fds[1]);
    int exec_errno = 0;
    ssize_t n;
    while ((n = read(exec_fds[0], &exec_errno, sizeof(exec_errno))) < 0 && errno == EINTR) {
    }
    close(exec_fds[0]);
    char out[256] = "";
    size_t got = 0;
    bool timed_out = false;
    double deadline = bench_now_s() + timeout_s;
    for (;;) {
        double left = deadline - bench_now_s();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int ready = poll(&pfd, 1, left > 1 ? 1000 : (int)(left * 1000) + 1);
        if (ready < 0 && errno != EINTR)
            break;
        if (ready <= 0)
            continue;
        char scratch[256];
        bool room = got < sizeof(out) - 1;
        ssize_t k = room ? read(fds[0], out + got, sizeof(out) - 1 - got)
                         : read(fds[0], scratch, sizeof(scratch)); /* drain what does not fit */
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* end of output: the program has ended or closed its stdout */
        if (room)
            got += (size_t)k;
    }
    out[got] = 0;
    close(fds[0]);
    /* its end, within the same limit: it may close its output and go on running */
    int status = 0;
    for (;;) {
        pid_t done = timed_out ? 0 : waitpid(pid, &status, WNOHANG);
        if (done == pid || (done < 0 && errno != EINTR))
            break;
        if (timed_out || bench_now_s() > deadline) {
            timed_out = true;
            kill(-pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            break;
        }
        if (done == 0)
            usleep(1000);
    }
    if (timed_out) {
        kill(-pid, SIGKILL); /* what it left behind in its group */
        snprintf(why, why_size, "%s did not finish within %g s (killed)", argv[0], timeout_s);
        return -1;
    }
    unsigned long long sum;
    if (n == (ssize_t)sizeof(exec_errno)) { /* the exec failed */
        if (missing && (exec_errno == ENOENT || exec_errno == EACCES))
            snprintf(why, why_size, "%s is not installed (%s)", argv[0], missing);
        else
            snprintf(why, why_size, "%s could not be started: %s", argv[0], strerror(exec_errno));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || sscanf(out, "%llx %lf", &sum, ns) != 2) {
        snprintf(why, why_size, "%s failed (%s %d)", argv[0],
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return -1;
    }
    *checksum = sum;
    return 0;
}

/* Guest code: mark 1; kernel(n); mark 2; the checksum as two mark values; exit. The kernel
 * blob follows at WORKLOAD_GUEST_ADDRESS. */
static int build_compute_guest(const struct bench_workload *w, uint64_t n, struct bench_code *c,
                               size_t *own_len)
{
    c->n = 0;
    c->overflow = false;
    bench_emit_mark(c, 1);
    BENCH_EMIT(c, 0x48, 0xbf);
    bench_emit_u64(c, n); /* movabs rdi, n */
    BENCH_EMIT(c, 0xe8);  /* call kernel */
    size_t call_end = c->n + 4;
    bench_emit_u32(c, 0);
    BENCH_EMIT(c, 0x48, 0x89, 0xc3); /* mov rbx, rax */
    bench_emit_mark(c, 2);
    BENCH_EMIT(c, 0x89, 0xd8); /* mov eax, ebx */
    bench_emit_mark_eax(c);
    BENCH_EMIT(c, 0x48, 0x89, 0xd8, 0x48, 0xc1, 0xe8, 0x20); /* mov rax, rbx; shr rax, 32 */
    bench_emit_mark_eax(c);
    bench_emit_exit(c);
    *own_len = c->n;
    while (c->n < WORKLOAD_GUEST_ADDRESS - GUEST_IMAGE_BASE)
        BENCH_EMIT(c, 0xcc);
    int32_t rel = (int32_t)(c->n - call_end);
    memcpy(c->b + call_end - 4, &rel, 4);
    bench_emit(c, w->blob, w->size);
    return c->overflow ? -1 : 0;
}

/* One measurement (backend < 0: program p; else a backend index): the kernel's own time and
 * its checksum. */
static int measure_once(const struct bench_ctx *ctx, const struct bench_workload *w, int program,
                        int backend, uint64_t n, double *ns_total, uint64_t *checksum,
                        struct peer_row *kvm, char *why, size_t why_size)
{
    if (backend < 0) {
        char count[32];
        snprintf(count, sizeof(count), "%llu", (unsigned long long)n);
        char *argv[8];
        unsigned i = 0;
        for (; programs[program].argv[i]; i++) {
            const char *a = programs[program].argv[i];
            argv[i] = !strcmp(a, "SELF")    ? (char *)ctx->opt->self_exe
                      : !strcmp(a, "DRRUN") ? (char *)bench_drrun_path()
                      : !strcmp(a, "W")     ? (char *)w->name
                      : !strcmp(a, "N")     ? count
                                            : (char *)a;
        }
        argv[i] = NULL;
        return bench_run_peer_program(argv, programs[program].missing, BENCH_PEER_TIMEOUT_S,
                                      ns_total, checksum, why, why_size);
    }
    static struct bench_code c;
    size_t own_len;
    if (build_compute_guest(w, n, &c, &own_len) < 0) {
        snprintf(why, why_size, "the workload does not fit the guest image");
        return -1;
    }
    static const struct bench_marks cpu = {.cpu_time = true};
    struct machine_result *r =
        bench_run_guest_marks(ctx->host.backend[backend], &c, 300.0, 4, &cpu, why, why_size);
    if (!r)
        return -1;
    *ns_total = (double)(r->mark_cpu_ns[1] - r->mark_cpu_ns[0]);
    *checksum = ((uint64_t)r->mark_value[3] << 32) | r->mark_value[2];
    if (kvm) {
        kvm->kvm_insn_emulation = kvm->kvm_exits = 0;
        bench_result_stat(r, "kvm.insn_emulation", &kvm->kvm_insn_emulation);
        bench_result_stat(r, "kvm.exits", &kvm->kvm_exits);
        /* the guest's own instructions around the call, all executed once but the final HLT */
        kvm->guest_insns = bench_count_insns(c.b, own_len) - 1;
    }
    free(r);
    return 0;
}

/* The checksum runs: 2 iterations always, 100 where they fit the time budget. */
#define CHECK_SHORT 2
#define CHECK_LONG 100
#define CHECK_MID 10 /* to calibrate where 100 may not fit (then 100, 1000, ...: measure_row) */

static bool checksum_ok(struct peer_row *pr, uint64_t got, uint64_t want, uint64_t n)
{
    if (got == want)
        return true;
    snprintf(pr->why_not, sizeof(pr->why_not),
             "WRONG RESULT: checksum %#llx after %llu iterations, native gives %#llx",
             (unsigned long long)got, (unsigned long long)n, (unsigned long long)want);
    return false;
}

static void measure_row(const struct bench_ctx *ctx, const struct bench_workload *w,
                        struct peer_row *pr, int program, int backend, const uint64_t want[2],
                        uint64_t max_n)
{
    /* Check the result first - a short run whose checksum must match the kernel run natively
     * in this process (a wrong result is a failure, not a data point), then a longer one where
     * it fits the budget (on a PVM vtx 100 iterations take seconds) - then run as many
     * iterations as fit the per-run budget. */
    const struct bench_options *o = ctx->opt;
    double budget_ns = o->quick ? 0.3e9 : 1.5e9;
    double t;
    uint64_t sum = 0;
    bench_progress(ctx, "bench: %s %-22s ", w->name, pr->config);
    if (measure_once(ctx, w, program, backend, CHECK_SHORT, &t, &sum, NULL, pr->why_not,
                     sizeof(pr->why_not)) < 0 ||
        !checksum_ok(pr, sum, want[0], CHECK_SHORT)) {
        bench_progress(ctx, "%s\n", pr->why_not);
        return;
    }
    /* The cost of one more iteration, not of the run: a translator's first iterations carry
     * its translation (dbt on the footprint workload: ~8 ms, 700 iterations' worth), which
     * calibrating on t / CHECK_SHORT took for the iterations' cost - too few iterations. */
    double t_short = t, per = t / CHECK_SHORT;
    pr->checked_iterations = CHECK_SHORT;
    /* Where the start-up dominates the short run (valgrind translating the footprint
     * workload's 220 KB: ~0.5 s, then ~1 ms an iteration), the extra iterations of a run of
     * CHECK_MID can vanish in the start-up's own variation - and t / CHECK_SHORT taken as the
     * cost of an iteration made that row 2500-3000x native in some reports and 31x in others.
     * The longer run grows tenfold until its extra iterations stand out (a tenth of the short
     * run); until then their cost is at most that tenth, which bounds the next run's length. */
    bool resolved = per * CHECK_LONG <= budget_ns; /* the run of CHECK_LONG below tells */
    for (uint64_t m = CHECK_MID; !resolved && m <= max_n; m *= 10) {
        if (measure_once(ctx, w, program, backend, m, &t, &sum, NULL, pr->why_not,
                         sizeof(pr->why_not)) < 0) {
            bench_progress(ctx, "%s\n", pr->why_not);
            return;
        }
        if (t > t_short * 1.1) {
            per = (t - t_short) / (double)(m - CHECK_SHORT);
            resolved = true;
            break;
        }
        double bound = t_short * 0.1 / (double)(m - CHECK_SHORT);
        if (bound < per)
            per = bound;
        if (t_short + per * (double)(10 * m - CHECK_SHORT) > budget_ns)
            break;
    }
    if (t_short + per * (CHECK_LONG - CHECK_SHORT) <= budget_ns) {
        if (measure_once(ctx, w, program, backend, CHECK_LONG, &t, &sum, NULL, pr->why_not,
                         sizeof(pr->why_not)) < 0 ||
            !checksum_ok(pr, sum, want[1], CHECK_LONG)) {
            bench_progress(ctx, "%s\n", pr->why_not);
            return;
        }
        per = t > t_short ? (t - t_short) / (CHECK_LONG - CHECK_SHORT) : t / CHECK_LONG;
        pr->checked_iterations = CHECK_LONG;
    }
    uint64_t n = per > 0 ? (uint64_t)(budget_ns / per) : max_n;
    if (n > max_n)
        n = max_n;
    if (n < CHECK_SHORT)
        n = CHECK_SHORT;
    pr->iterations = n;
    unsigned reps = o->quick ? 2 : 3;
    double samples[8];
    unsigned got = 0;
    for (unsigned r = 0; r < reps; r++) {
        if (measure_once(ctx, w, program, backend, n, &t, &sum, NULL, pr->why_not,
                         sizeof(pr->why_not)) < 0)
            break;
        samples[got++] = t / (double)n;
    }
    pr->measured = got == reps;
    if (pr->measured)
        bench_stats_of(samples, got, &pr->ns_per_iter);
    bench_progress(ctx, "%s\n", pr->measured ? "done" : pr->why_not);
}

/* vtx: KVM's own count of the instructions it emulated (kvm.insn_emulation) in a run of one
 * iteration, beside the instructions that run executes: the kernel's, counted natively by
 * single-stepping the same bytes, plus the guest's own around the call. On PVM the two are
 * equal: a guest that is not PVM-aware has every instruction emulated. */
static void count_kvm_emulation(const struct bench_ctx *ctx, const struct bench_workload *w,
                                kernel_fn *native, int backend, struct peer_row *pr)
{
    const uint64_t n = 1;
    double t;
    uint64_t sum;
    char why[BENCH_WHY_SIZE];
    if (measure_once(ctx, w, -1, backend, n, &t, &sum, pr, why, sizeof(why)) < 0 ||
        pr->kvm_insn_emulation <= 0) {
        pr->kvm_insn_emulation = 0;
        return;
    }
    uint64_t k = count_insns_natively(native, w->size, n);
    pr->guest_insns = k ? k + pr->guest_insns : 0;
    pr->emulation_iterations = n;
}

static void peers_measure(struct bench_ctx *ctx, void *state)
{
    struct peers_state *st = state;
    const struct bench_host *h = &ctx->host;
    uint64_t max_n = ctx->opt->quick ? 1000000ULL : 10000000ULL;
    unsigned wcount;
    const struct bench_workload *wl = bench_workloads(&wcount);
    st->workload_count = wcount < MAX_WORKLOADS ? wcount : MAX_WORKLOADS;
    st->config_count = PROGRAM_COUNT + h->backend_count;
    for (unsigned p = 0; p < PROGRAM_COUNT; p++)
        snprintf(st->config_name[p], sizeof(st->config_name[p]), "%s", programs[p].name);
    for (unsigned b = 0; b < h->backend_count; b++)
        snprintf(st->config_name[PROGRAM_COUNT + b], sizeof(st->config_name[0]), "guest on %s",
                 h->backend_name[b]);
    for (unsigned i = 0; i < st->workload_count; i++) {
        const struct bench_workload *w = &wl[i];
        st->workload[i] = w;
        kernel_fn *native = bench_workload_map_native(w, false);
        const uint64_t want[2] = {native ? native(CHECK_SHORT) : 0,
                                  native ? native(CHECK_LONG) : 0};
        for (unsigned k = 0; k < st->config_count; k++) {
            struct peer_row *pr = &st->row[i][k];
            pr->config = st->config_name[k];
            if (!native) {
                snprintf(pr->why_not, sizeof(pr->why_not), "cannot map the workload natively");
                continue;
            }
            if (k < PROGRAM_COUNT) {
                measure_row(ctx, w, pr, (int)k, -1, want, max_n);
                continue;
            }
            unsigned b = k - PROGRAM_COUNT;
            if (!h->backend_available[b]) {
                snprintf(pr->why_not, sizeof(pr->why_not), "backend unavailable: %s",
                         h->backend_note[b]);
                continue;
            }
            measure_row(ctx, w, pr, -1, (int)b, want, max_n);
            /* single-stepping is slow: in --quick, the first workload only */
            if (!strcmp(h->backend_name[b], "vtx") && (!ctx->opt->quick || i == 0))
                count_kvm_emulation(ctx, w, native, (int)b, pr);
        }
    }
}

static double slowdown(const struct peers_state *st, unsigned i, unsigned k)
{
    const struct peer_row *native = &st->row[i][0], *pr = &st->row[i][k];
    return native->measured && pr->measured && native->ns_per_iter.median > 0
               ? pr->ns_per_iter.median / native->ns_per_iter.median
               : 0;
}

/* "KVM emulated E of the run's I instructions (2 iterations)", or "" */
static void emulation_text(const struct peer_row *pr, char *buf, size_t size)
{
    if (pr->kvm_insn_emulation > 0 && pr->guest_insns)
        snprintf(buf, size,
                 "kvm.insn_emulation = %.0f for a run of %llu iterations that executes %llu "
                 "instructions (%.2f emulated per executed); kvm.exits = %.0f",
                 pr->kvm_insn_emulation, (unsigned long long)pr->emulation_iterations,
                 (unsigned long long)pr->guest_insns,
                 pr->kvm_insn_emulation / (double)pr->guest_insns, pr->kvm_exits);
    else
        snprintf(buf, size, "%s", "");
}

static void peers_write_files(struct bench_ctx *ctx, const void *state)
{
    const struct peers_state *st = state;
    const struct bench_host *h = &ctx->host;
    FILE *f = bench_file_open(ctx, "peers.csv");
    if (f) {
        fprintf(f, "workload,peer,measured,iterations,median_ns_per_iteration,min_ns,max_ns,"
                   "slowdown_vs_native,kvm_insn_emulation,executed_instructions,note\n");
        for (unsigned i = 0; i < st->workload_count; i++)
            for (unsigned k = 0; k < st->config_count; k++) {
                const struct peer_row *pr = &st->row[i][k];
                if (pr->measured)
                    fprintf(f, "%s,\"%s\",yes,%llu,%.4f,%.4f,%.4f,%.3f,", st->workload[i]->name,
                            pr->config, (unsigned long long)pr->iterations, pr->ns_per_iter.median,
                            pr->ns_per_iter.min, pr->ns_per_iter.max, slowdown(st, i, k));
                else
                    fprintf(f, "%s,\"%s\",no,,,,,,", st->workload[i]->name, pr->config);
                if (pr->kvm_insn_emulation > 0 && pr->guest_insns)
                    fprintf(f, "%.0f,%llu", pr->kvm_insn_emulation,
                            (unsigned long long)pr->guest_insns);
                else
                    fprintf(f, ",");
                fprintf(f, ",\"%s\"\n", pr->measured ? "" : pr->why_not);
            }
        bench_file_close(ctx, f);
    }
    /* peers.dat: one block per configuration, one line per workload: x (the workload's
     * group, the configuration's place in it), slowdown (NaN if not measured), label, state
     * (0 measured, 1 measured on PVM, 2 not measured). Clustered bars: a group per workload,
     * a colour per configuration. */
    static const char *const colors[] = {"#777777", "#CC79A7", "#882255", "#0072B2",
                                         "#E69F00", "#009E73", "#56B4E9", "#000000"};
    const double width = 0.84 / st->config_count;
    f = bench_file_open(ctx, "peers.dat");
    double top = 10;
    bool has_state[MAX_CONFIGS][3] = {{false}};
    if (f) {
        for (unsigned k = 0; k < st->config_count; k++) {
            fprintf(f, "# %s: x slowdown label state\n", st->config_name[k]);
            bool pvm = h->kvm_is_pvm && strstr(st->config_name[k], "vtx");
            for (unsigned i = 0; i < st->workload_count; i++) {
                const struct peer_row *pr = &st->row[i][k];
                double sd = slowdown(st, i, k);
                double x = i + (k - (st->config_count - 1) / 2.0) * width;
                int state = sd > 0 ? (pvm ? 1 : 0) : 2;
                has_state[k][state] = true;
                if (sd > 0)
                    fprintf(f,
                            sd >= 100  ? "%.3f %.4g \"%.0fx\" %d\n"
                            : sd >= 10 ? "%.3f %.4g \"%.1fx\" %d\n"
                                       : "%.3f %.4g \"%.2fx\" %d\n",
                            x, sd, sd, state);
                else
                    fprintf(f, "%.3f NaN \"%s: not measured%s\" 2\n", x, st->config_name[k],
                            strstr(pr->why_not, "WRONG") ? ", WRONG RESULT" : "");
                if (sd * 300 > top)
                    top = sd * 300; /* headroom for the rotated labels */
            }
            fprintf(f, "\n\n");
        }
        bench_file_close(ctx, f);
    }
    /* measured: KVM emulated (nearly) every instruction the guest executed */
    bool emulated_all = false;
    for (unsigned i = 0; i < st->workload_count; i++)
        for (unsigned k = 0; k < st->config_count; k++)
            emulated_all |= st->row[i][k].guest_insns &&
                            st->row[i][k].kvm_insn_emulation >= 0.9 * st->row[i][k].guest_insns;
    char caption[1024];
    bench_caption(ctx, caption, sizeof(caption));
    f = bench_file_open(ctx, "peers.gp");
    if (!f)
        return;
    fprintf(f,
            "set datafile missing 'NaN'\nset style fill solid 0.85 border -1\n"
            "set boxwidth %.3f absolute\nset grid ytics\nset logscale y\nset yrange [0.3:%g]\n"
            "set xrange [-0.6:%u.6]\n"
            "set ylabel 'CPU time per iteration relative to native (log scale)'\n"
            "set key outside bottom center horizontal font ',11'\n"
            "set title \"The same code everywhere: slowdown against native (1.0x) per workload, "
            "median of %u runs%s\\n%s\" font ',10'\n",
            width, top, st->workload_count ? st->workload_count - 1 : 0, ctx->opt->quick ? 2 : 3,
            !h->kvm_is_pvm ? ""
            : emulated_all ? "\\nhatched: vtx on this host is PVM, software virtualization, not "
                             "VT-x/AMD-V: KVM emulates every guest instruction "
                             "(kvm.insn_emulation, see the table)"
                           : "\\nhatched: vtx on this host is PVM, software virtualization, "
                             "not VT-x/AMD-V",
            caption);
    fprintf(f, "set xtics (");
    for (unsigned i = 0; i < st->workload_count; i++)
        fprintf(f, "%s'%s' %u", i ? ", " : "", st->workload[i]->name, i);
    fprintf(f, ") font ',12'\n");
    const char *fmts[] = {"pngcairo size 1400,800 noenhanced", "svg size 1400,800 noenhanced"};
    const char *exts[] = {"png", "svg"};
    for (int t = 0; t < 2; t++) {
        fprintf(f, "set terminal %s\nset output 'peers.%s'\nplot ", fmts[t], exts[t]);
        for (unsigned k = 0; k < st->config_count; k++) {
            const char *col = colors[k % 8];
            /* only the series that have points (gnuplot warns about empty ones) */
            fprintf(f, "%s'peers.dat' index %u using 1:%s with boxes %s lc rgb '%s' title '%s%s'",
                    k ? ", " : "", k, has_state[k][1] ? "2" : "($4==0?$2:NaN)",
                    has_state[k][1] ? "fs pattern 2" : "", col, st->config_name[k],
                    has_state[k][1] ? " (PVM)" : "");
            if (has_state[k][0] || has_state[k][1])
                fprintf(f,
                        ", '' index %u using 1:($4<2?$2*1.2:NaN):3 with labels rotate by 90 left "
                        "font ',8' notitle",
                        k);
            if (has_state[k][2])
                fprintf(f,
                        ", '' index %u using 1:($4==2?0.35:NaN):3 with labels rotate by 90 "
                        "left font ',8' tc rgb '#555555' notitle",
                        k);
        }
        fprintf(f, "\n");
    }
    bench_file_close(ctx, f);
    bench_plot(ctx, "peers.gp");
}

static void peers_write_section(struct bench_ctx *ctx, const void *state, struct bench_doc *d)
{
    const struct peers_state *st = state;
    const struct bench_host *h = &ctx->host;
    bench_doc_heading(d, "The same compute code: native, qemu-user, valgrind, DynamoRIO, guests");
    bench_doc_figure(d, "peers.png", "the same compute code: slowdown against native");
    for (unsigned i = 0; i < st->workload_count; i++) {
        const struct bench_workload *w = st->workload[i];
        bench_doc_para(d, "Workload **%s** (%lu bytes of position-independent machine code): %s.",
                       w->name, w->size, w->description);
        bench_doc_table(d, 6,
                        (const char *[]){"run", "iterations", "CPU ns per iteration (median)",
                                         "min-max", "vs native", "note"});
        for (unsigned k = 0; k < st->config_count; k++) {
            const struct peer_row *pr = &st->row[i][k];
            char emu[400];
            emulation_text(pr, emu, sizeof(emu));
            bench_doc_cell(d, "%s", pr->config);
            if (pr->measured) {
                bench_doc_cell(d, "%llu", (unsigned long long)pr->iterations);
                bench_doc_cell(d, "%.1f", pr->ns_per_iter.median);
                bench_doc_cell(d, "%.1f-%.1f", pr->ns_per_iter.min, pr->ns_per_iter.max);
                bench_doc_cell(d, "%.2fx", slowdown(st, i, k));
                bench_doc_cell(d, "%s%s%s%s",
                               h->kvm_is_pvm && strstr(pr->config, "vtx") ? "PVM, not VT-x/AMD-V"
                                                                          : "",
                               emu[0] ? ": " : "", emu,
                               pr->checked_iterations < CHECK_LONG
                                   ? "; checksum compared after 2 iterations (100 do not fit "
                                     "the time budget)"
                                   : "");
            } else {
                bench_doc_cell(d, "%s", "");
                bench_doc_cell(d, "not measured: %s", pr->why_not);
                bench_doc_cell(d, "%s", "");
                bench_doc_cell(d, "%s", "");
                bench_doc_cell(d, "%s", emu);
            }
        }
        bench_doc_table_end(d);
    }
    bench_doc_para(
        d, "The same bytes run as a Linux program natively, under qemu-x86_64 (TCG), "
           "valgrind --tool=none and DynamoRIO's drrun without a client, where it is installed "
           "(timed inside the program with CLOCK_PROCESS_CPUTIME_ID: the "
           "tool's own work counts, its start-up does not), and as raw guest code on each "
           "available backend (the guest thread's CPU time between two marks). Every "
           "configuration's checksum after 2 iterations, and after 100 where they fit the time "
           "budget, must equal the native one, or it is reported as a wrong result instead of "
           "a time. Iteration counts are calibrated per run, on the cost of one more iteration "
           "(a translator's start-up is not an iteration's cost), so that slow configurations "
           "stay within the time budget; the comparison is per iteration, start-up included. "
           "Data: peers.csv.");
    for (unsigned i = 0; i < st->workload_count && h->kvm_is_pvm; i++)
        for (unsigned k = 0; k < st->config_count; k++) {
            const struct peer_row *pr = &st->row[i][k];
            if (!strstr(pr->config, "vtx") || pr->kvm_insn_emulation <= 0 || !pr->guest_insns)
                continue;
            bench_doc_para(
                d,
                "**Why vtx is so slow here.** This host's /dev/kvm is PVM, a software "
                "hypervisor: a guest that is not PVM-aware runs deprivileged, and KVM emulates "
                "its instructions. Measured on workload %s: KVM's own statistic "
                "kvm.insn_emulation is %.0f for a run of %llu iterations, which executes %llu "
                "instructions (the kernel's, counted natively by single-stepping the same bytes, "
                "plus the guest's own around the call): %.2f emulated per executed instruction, "
                "with %.0f VM exits. Every instruction goes through KVM's x86 emulator, hence "
                "the %.0fx. On VT-x/AMD-V hardware the same guest would run natively between its "
                "exits.",
                st->workload[i]->name, pr->kvm_insn_emulation,
                (unsigned long long)pr->emulation_iterations, (unsigned long long)pr->guest_insns,
                pr->kvm_insn_emulation / (double)pr->guest_insns, pr->kvm_exits,
                slowdown(st, i, k));
        }
}

static void peers_write_json(struct bench_ctx *ctx, const void *state, FILE *f)
{
    (void)ctx;
    const struct peers_state *st = state;
    bench_json_key(f, "peers");
    fprintf(f, "[\n");
    bool first = true;
    for (unsigned i = 0; i < st->workload_count; i++)
        for (unsigned k = 0; k < st->config_count; k++) {
            const struct peer_row *pr = &st->row[i][k];
            fprintf(f, "%s    {\"workload\": ", first ? "" : ",\n");
            first = false;
            bench_json_str(f, st->workload[i]->name);
            fprintf(f, ", \"peer\": ");
            bench_json_str(f, pr->config);
            fprintf(f,
                    ", \"iterations\": %llu, \"checksum_checked_after\": %llu, "
                    "\"cpu_ns_per_iteration\": ",
                    (unsigned long long)pr->iterations, (unsigned long long)pr->checked_iterations);
            if (pr->measured)
                bench_json_stats(f, &pr->ns_per_iter);
            else
                bench_json_not_measured(f, pr->why_not);
            if (pr->kvm_insn_emulation > 0 && pr->guest_insns)
                fprintf(f,
                        ", \"kvm_insn_emulation\": %.0f, \"kvm_exits\": %.0f, "
                        "\"executed_instructions\": %llu, \"emulation_run_iterations\": %llu",
                        pr->kvm_insn_emulation, pr->kvm_exits, (unsigned long long)pr->guest_insns,
                        (unsigned long long)pr->emulation_iterations);
            fputc('}', f);
        }
    fprintf(f, "\n  ]");
}

const struct bench_experiment bench_experiment_peers = {
    .name = "peers",
    .summary = "the same compute code natively, under qemu-user, valgrind, DynamoRIO and every "
               "backend",
    .state_size = sizeof(struct peers_state),
    .measure = peers_measure,
    .write_files = peers_write_files,
    .write_section = peers_write_section,
    .write_json = peers_write_json,
};
