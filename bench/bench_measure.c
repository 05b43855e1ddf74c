/* bench_measure.c - the measurements behind `vmlab bench` (method in bench.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <Zydis/Zydis.h>

#include "bench.h"
#include "tools/vmlab/isolated_run.h"
#include "vmm/guest_layout.h"
#include "vmm/machine.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- host facts and the kernel floor --------------------------------------------------- */

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
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    uint64_t c0 = ((uint64_t)hi << 32) | lo;
    double t0 = now_s();
    while (now_s() - t0 < 0.1) {
    }
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    h->tsc_ghz = (double)((((uint64_t)hi << 32) | lo) - c0) / ((now_s() - t0) * 1e9);

    /* Kernel floor: a CLI at CPL 3 -> #GP -> SIGSEGV -> handler that only skips it. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = floor_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, &old);
    unsigned reps = o->repetitions, n = o->quick ? 2000 : 10000;
    double samples[32];
    for (unsigned r = 0; r < reps; r++) {
        double a = now_s();
        for (unsigned i = 0; i < n; i++)
            __asm__ volatile("cli" ::: "memory");
        samples[r] = (now_s() - a) * 1e9 / n;
    }
    sigaction(SIGSEGV, &old, NULL);
    bench_stats_of(samples, reps, &h->signal_round_trip_ns);
    n = o->quick ? 20000 : 100000;
    for (unsigned r = 0; r < reps; r++) {
        double a = now_s();
        for (unsigned i = 0; i < n; i++)
            syscall(SYS_getppid);
        samples[r] = (now_s() - a) * 1e9 / n;
    }
    bench_stats_of(samples, reps, &h->syscall_ns);

    const struct backend_ops *const *list = backend_list();
    for (unsigned b = 0; b < BENCH_MAX_BACKENDS && list[b]; b++) {
        h->backend_name[b] = list[b]->name;
        char reason[256] = "";
        h->backend_available[b] = list[b]->probe(reason, sizeof(reason)) == 0;
        if (!h->backend_available[b])
            snprintf(h->backend_note[b], sizeof(h->backend_note[b]), "%s", reason);
        else if (list[b]->describe_host)
            list[b]->describe_host(h->backend_note[b], sizeof(h->backend_note[b]));
    }
}

/* ---- generated guests ------------------------------------------------------------------- */

struct code {
    uint8_t b[32768];
    size_t n;
};

static void emit(struct code *c, const void *bytes, size_t n)
{
    memcpy(c->b + c->n, bytes, n);
    c->n += n;
}
#define EMIT(c, ...)                                                                               \
    do {                                                                                           \
        static const uint8_t _b[] = {__VA_ARGS__};                                                 \
        emit(c, _b, sizeof(_b));                                                                   \
    } while (0)

static void emit_u32(struct code *c, uint32_t v)
{
    emit(c, &v, 4);
}
static void emit_u64(struct code *c, uint64_t v)
{
    emit(c, &v, 8);
}

/* OUT of `id` to PORT_BENCH_MARK, preserving RDX (used by the I/O classes). */
static void emit_mark(struct code *c, uint32_t id)
{
    EMIT(c, 0xb8);
    emit_u32(c, id);                       /* mov eax, id */
    EMIT(c, 0x52, 0x66, 0xba, 0x20, 0x05); /* push rdx; mov dx, 0x520 */
    EMIT(c, 0xef, 0x5a);                   /* out dx, eax; pop rdx */
}

/* mov r15, n; loop: body; dec r15; jnz loop */
static void emit_loop(struct code *c, uint32_t n, const uint8_t *body, size_t len)
{
    EMIT(c, 0x49, 0xc7, 0xc7);
    emit_u32(c, n);
    size_t top = c->n;
    emit(c, body, len);
    EMIT(c, 0x49, 0xff, 0xcf, 0x0f, 0x85); /* dec r15; jnz rel32 */
    emit_u32(c, (uint32_t)(int32_t)(top - (c->n + 4)));
}

struct class_spec {
    const char *name;
    const char *note;
    uint8_t setup[48];
    size_t setup_len;
    uint8_t body[16];
    size_t body_len;
    uint8_t base[16];
    size_t base_len;
    int gate_vector; /* >= 0: point this IDT gate at an IRETQ handler */
    bool timer;      /* program the timer at gate_vector and STI first */
};

#define B(...) {__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__})

static const struct class_spec class_specs[] = {
    {"cli", "", {0}, 0, B(0xfa), {0}, 0, -1, false},
    {"sti", "", {0}, 0, B(0xfb), {0}, 0, -1, false},
    {"pushf_popf",
     "PUSHFQ+POPFQ pair; sensitive but unprivileged: never traps on trap_emulate",
     {0},
     0,
     B(0x9c, 0x9d),
     {0},
     0,
     -1,
     false},
    {"cpuid",
     "leaf 0; traps on trap_emulate only with CPUID faulting",
     {0},
     0,
     B(0x31, 0xc0, 0x0f, 0xa2),
     B(0x31, 0xc0),
     -1,
     false},
    {"rdtsc",
     "traps on trap_emulate only where PR_SET_TSC works",
     {0},
     0,
     B(0x0f, 0x31),
     {0},
     0,
     -1,
     false},
    {"in",
     "IN AL, DX from the scratch port: an I/O exit to the VMM device",
     B(0x66, 0xba, 0x30, 0x05),
     B(0xec),
     {0},
     0,
     -1,
     false},
    {"out",
     "OUT DX, AL to the scratch port: an I/O exit to the VMM device",
     B(0x66, 0xba, 0x30, 0x05),
     B(0xee),
     {0},
     0,
     -1,
     false},
    {"mov_cr3",
     "write of the same CR3 value",
     B(0x0f, 0x20, 0xdb),
     B(0x0f, 0x22, 0xdb),
     {0},
     0,
     -1,
     false},
    {"sgdt_lgdt",
     "SGDT+LGDT pair (SGDT alone never traps on trap_emulate)",
     {0},
     0,
     B(0x0f, 0x01, 0x44, 0x24, 0xf0, 0x0f, 0x01, 0x54, 0x24, 0xf0),
     {0},
     0,
     -1,
     false},
    {"int_iretq",
     "INT 0x30 to a handler that only does IRETQ",
     {0},
     0,
     B(0xcd, 0x30),
     {0},
     0,
     0x30,
     false},
    {"hlt_timer",
     "STI; HLT woken by the 200 us virtual timer: per wake-up, period included",
     {0},
     0,
     B(0xf4),
     {0},
     0,
     0x31,
     true},
};

/* Build the guest for one class: setup, timed loop, baseline loop, exit, IRETQ handler. */
static void build_class_guest(const struct class_spec *s, uint32_t n, struct code *c)
{
    c->n = 0;
    size_t gate_patch = 0;
    if (s->gate_vector >= 0) {
        EMIT(c, 0x48, 0xb8); /* movabs rax, gate (patched below) */
        gate_patch = c->n;
        emit_u64(c, 0);
        EMIT(c, 0x48, 0x89, 0x04, 0x25); /* mov [abs32], rax */
        emit_u32(c, (uint32_t)(GUEST_RAM_BASE + GUEST_IDT_OFFSET + 16 * (uint64_t)s->gate_vector));
    }
    if (s->timer) {
        EMIT(c, 0xb8);
        emit_u32(c, (uint32_t)s->gate_vector);
        EMIT(c, 0x66, 0xba, 0x14, 0x05, 0xef); /* out 0x514 (vector) */
        EMIT(c, 0xb8);
        emit_u32(c, 200);
        EMIT(c, 0x66, 0xba, 0x10, 0x05, 0xef); /* out 0x510 (period 200 us) */
        EMIT(c, 0xfb);                         /* sti */
    }
    emit(c, s->setup, s->setup_len);
    emit_mark(c, 1);
    emit_loop(c, n, s->body, s->body_len);
    emit_mark(c, 2);
    emit_loop(c, n, s->base, s->base_len);
    emit_mark(c, 3);
    EMIT(c, 0xfa, 0x31, 0xc0, 0xe6, 0xf4, 0xf4); /* cli; xor eax,eax; out 0xf4, al; hlt */
    if (s->gate_vector >= 0) {
        uint64_t handler = GUEST_IMAGE_BASE + c->n;
        EMIT(c, 0x48, 0xcf); /* iretq */
        /* 64-bit interrupt gate, selector 0x08 (SDM vol. 3A 6.14.1); handler < 4 GiB */
        uint64_t gate = (handler & 0xFFFF) | ((uint64_t)GUEST_SEL_CODE64 << 16) | (0x8EULL << 40) |
                        (((handler >> 16) & 0xFFFF) << 48);
        memcpy(c->b + gate_patch, &gate, 8);
    }
}

/* Run generated guest code in a child process; the result (free() it), or NULL with `why`
 * when the run failed or produced fewer than `min_marks` marks. */
static struct machine_result *run_code(const struct backend_ops *ops, const struct code *c,
                                       double timeout, unsigned min_marks, char *why,
                                       size_t why_size)
{
    struct machine_config config;
    machine_config_defaults(&config);
    config.backend = ops;
    config.raw_code = c->b;
    config.raw_size = c->n;
    config.timeout_s = timeout;
    struct machine_result *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    isolated_run(&config, r);
    if (!r->guest_exited || r->status != 0 || r->mark_count < min_marks) {
        snprintf(why, why_size, "run failed: %s", r->message[0] ? r->message : "no marks");
        free(r);
        return NULL;
    }
    return r;
}

/* One run of a generated guest; returns 0 and the mark times, or -1 with a reason. */
static int run_guest(const struct backend_ops *ops, const struct code *c, double timeout,
                     uint64_t marks[3], char *why, size_t why_size)
{
    struct machine_result *r = run_code(ops, c, timeout, 3, why, why_size);
    if (!r)
        return -1;
    memcpy(marks, r->mark_ns, 3 * sizeof(uint64_t));
    free(r);
    return 0;
}

void bench_measure_classes(struct bench_results *res, const struct bench_options *o)
{
    const struct backend_ops *const *list = backend_list();
    unsigned nclasses = sizeof(class_specs) / sizeof(class_specs[0]);
    res->class_count = nclasses;
    for (unsigned k = 0; k < nclasses; k++) {
        const struct class_spec *s = &class_specs[k];
        struct bench_class_result *cr = &res->classes[k];
        cr->class_name = s->name;
        cr->note = s->note;
        cr->iterations = s->timer ? (o->quick ? 30 : 100) : (o->quick ? 5000 : 20000);
        struct code code;
        build_class_guest(s, cr->iterations, &code);
        for (unsigned b = 0; b < BENCH_MAX_BACKENDS && list[b]; b++) {
            if (!res->host.backend_available[b]) {
                snprintf(cr->why_not[b], sizeof(cr->why_not[b]), "backend unavailable: %s",
                         res->host.backend_note[b]);
                continue;
            }
            fprintf(stderr, "bench: %-10s on %-12s ", s->name, list[b]->name);
            double samples[32];
            unsigned got = 0;
            for (unsigned r = 0; r < o->repetitions; r++) {
                uint64_t m[3];
                if (run_guest(list[b], &code, 20.0, m, cr->why_not[b], sizeof(cr->why_not[b])) < 0)
                    break;
                double loop = (double)(m[1] - m[0]), base = (double)(m[2] - m[1]);
                samples[got++] = (loop - base) / cr->iterations;
                fputc('.', stderr);
            }
            if (got == o->repetitions) {
                cr->measured[b] = true;
                cr->why_not[b][0] = 0;
                bench_stats_of(samples, got, &cr->ns[b]);
                fprintf(stderr, " median %.1f ns\n", cr->ns[b].median);
            } else {
                fprintf(stderr, " not measured: %s\n", cr->why_not[b]);
            }
        }
    }
}

/* ---- peers: the same compute code natively, under qemu-user, valgrind, and as guests ---- */

/* The compute workload: bench/compute_kernel.c as a flat position-independent blob,
 * uint64_t compute_kernel(uint64_t iterations) at offset 0 (SysV ABI). */
typedef uint64_t compute_kernel_fn(uint64_t iterations);

static compute_kernel_fn *native_kernel(void)
{
    static compute_kernel_fn *fn;
    if (!fn) {
        size_t size = (bench_compute_kernel_size + 4095) & ~4095UL;
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        memcpy(p, bench_compute_kernel, bench_compute_kernel_size);
        if (mprotect(p, size, PROT_READ | PROT_EXEC) < 0)
            return NULL;
        fn = (compute_kernel_fn *)p;
    }
    return fn;
}

/* `vmlab __compute-peer N`: run the kernel natively for N iterations (the program that
 * native, qemu-user and valgrind time); prints "checksum elapsed_ns". */
int bench_compute_peer_main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    uint64_t n = strtoull(argv[1], NULL, 10);
    compute_kernel_fn *f = native_kernel();
    if (!f)
        return 70;
    double t0 = now_s();
    uint64_t sum = f(n);
    double t1 = now_s();
    printf("%llx %.0f\n", (unsigned long long)sum, (t1 - t0) * 1e9);
    return 0;
}

/* Run a peer; it prints "checksum elapsed_ns". Returns 0 with the kernel's own time. */
static int run_peer(char *const argv[], double *ns, uint64_t *checksum, char *why, size_t why_size)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (!freopen("/dev/null", "w", stderr))
            _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    char out[256] = "";
    size_t got = 0;
    ssize_t k;
    while ((k = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
        got += (size_t)k;
    out[got] = 0;
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    unsigned long long sum;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || sscanf(out, "%llx %lf", &sum, ns) != 2) {
        snprintf(why, why_size, "%s %s", argv[0],
                 WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "is not installed" : "failed");
        return -1;
    }
    *checksum = sum;
    return 0;
}

/* Guest code: mark 1; compute_kernel(n); mark 2; the checksum as two mark values; exit.
 * The kernel blob follows, 16-byte aligned. */
static int build_compute_guest(uint64_t n, struct code *c)
{
    c->n = 0;
    emit_mark(c, 1);
    EMIT(c, 0x48, 0xbf);
    emit_u64(c, n); /* movabs rdi, n */
    EMIT(c, 0xe8);  /* call kernel */
    size_t call_end = c->n + 4;
    emit_u32(c, 0);
    EMIT(c, 0x48, 0x89, 0xc3); /* mov rbx, rax */
    emit_mark(c, 2);
    EMIT(c, 0x89, 0xd8, 0x66, 0xba, 0x20, 0x05, 0xef);       /* mov eax, ebx; mov dx, 0x520; out */
    EMIT(c, 0x48, 0x89, 0xd8, 0x48, 0xc1, 0xe8, 0x20, 0xef); /* mov rax, rbx; shr rax, 32; out */
    EMIT(c, 0x31, 0xc0, 0xe6, 0xf4, 0xf4);                   /* exit 0 */
    while (c->n % 16)
        EMIT(c, 0xcc);
    if (c->n + bench_compute_kernel_size > sizeof(c->b))
        return -1;
    int32_t rel = (int32_t)(c->n - call_end);
    memcpy(c->b + call_end - 4, &rel, 4);
    emit(c, bench_compute_kernel, bench_compute_kernel_size);
    return 0;
}

/* One measurement of a peer (backend < 0: a Linux program; else a backend index): the
 * kernel's own time and its checksum. */
static int measure_once(int backend, char *const argv_tmpl[], uint64_t n, double *ns_total,
                        uint64_t *checksum, char *why, size_t why_size)
{
    if (backend < 0) {
        char count[32];
        snprintf(count, sizeof(count), "%llu", (unsigned long long)n);
        char *argv[8];
        unsigned i = 0;
        for (; argv_tmpl[i]; i++)
            argv[i] = strcmp(argv_tmpl[i], "N") ? argv_tmpl[i] : count;
        argv[i] = NULL;
        return run_peer(argv, ns_total, checksum, why, why_size);
    }
    static struct code c;
    if (build_compute_guest(n, &c) < 0) {
        snprintf(why, why_size, "the compute kernel does not fit the guest image");
        return -1;
    }
    struct machine_result *r = run_code(backend_list()[backend], &c, 300.0, 4, why, why_size);
    if (!r)
        return -1;
    *ns_total = (double)(r->mark_ns[1] - r->mark_ns[0]);
    *checksum = ((uint64_t)r->mark_value[3] << 32) | r->mark_value[2];
    free(r);
    return 0;
}

static void measure_peer(struct bench_peer_result *pr, const struct bench_options *o, int backend,
                         char *const argv[], uint64_t max_n)
{
    /* Calibrate with a short run whose checksum must match the kernel run natively in this
     * process (a wrong result is a failure, not a data point), then run as many iterations
     * as fit the per-run budget. */
    double budget_ns = o->quick ? 0.3e9 : 1.5e9;
    const uint64_t n0 = 100;
    double t0;
    uint64_t sum = 0, want = native_kernel() ? native_kernel()(n0) : 0;
    fprintf(stderr, "bench: compute %-22s ", pr->name);
    if (measure_once(backend, argv, n0, &t0, &sum, pr->why_not, sizeof(pr->why_not)) < 0) {
        fprintf(stderr, "%s\n", pr->why_not);
        return;
    }
    if (sum != want) {
        snprintf(pr->why_not, sizeof(pr->why_not),
                 "WRONG RESULT: checksum %#llx after %llu iterations, native gives %#llx",
                 (unsigned long long)sum, (unsigned long long)n0, (unsigned long long)want);
        fprintf(stderr, "%s\n", pr->why_not);
        return;
    }
    double per = t0 / (double)n0;
    uint64_t n = per > 0 ? (uint64_t)(budget_ns / per) : max_n;
    if (n > max_n)
        n = max_n;
    if (n < n0)
        n = n0;
    pr->iterations = n;
    unsigned reps = o->quick ? 2 : 3;
    double samples[8];
    unsigned got = 0;
    for (unsigned r = 0; r < reps; r++) {
        double t;
        if (measure_once(backend, argv, n, &t, &sum, pr->why_not, sizeof(pr->why_not)) < 0)
            break;
        samples[got++] = t / (double)n;
    }
    pr->measured = got == reps;
    if (pr->measured)
        bench_stats_of(samples, got, &pr->ns_per_iter);
    fprintf(stderr, "%s\n", pr->measured ? "done" : pr->why_not);
}

void bench_measure_peers(struct bench_results *res, const struct bench_options *o)
{
    uint64_t max_n = o->quick ? 1000000ULL : 10000000ULL;
    res->compute_iterations = max_n;
    char exe[512];
    snprintf(exe, sizeof(exe), "%s", o->self_exe);
    struct {
        const char *name;
        char *argv[8];
    } peers[] = {
        {"native", {exe, "__compute-peer", "N", NULL}},
        {"qemu-user (TCG)", {"qemu-x86_64", exe, "__compute-peer", "N", NULL}},
        {"valgrind --tool=none",
         {"valgrind", "--tool=none", "-q", exe, "__compute-peer", "N", NULL}},
    };
    unsigned k = 0;
    for (unsigned p = 0; p < sizeof(peers) / sizeof(peers[0]); p++, k++) {
        res->peers[k].name = peers[p].name;
        measure_peer(&res->peers[k], o, -1, peers[p].argv, max_n);
    }
    const struct backend_ops *const *list = backend_list();
    static char names[BENCH_MAX_BACKENDS][48];
    for (unsigned b = 0; b < BENCH_MAX_BACKENDS && list[b]; b++, k++) {
        struct bench_peer_result *pr = &res->peers[k];
        snprintf(names[b], sizeof(names[b]), "guest on %s", list[b]->name);
        pr->name = names[b];
        if (!res->host.backend_available[b]) {
            snprintf(pr->why_not, sizeof(pr->why_not), "backend unavailable: %s",
                     res->host.backend_note[b]);
            continue;
        }
        measure_peer(pr, o, (int)b, NULL, max_n);
    }
    res->peer_count = k;
}

/* ---- translation cost, break-even, footprint ------------------------------------------ */

static int backend_index(const char *name)
{
    const struct backend_ops *const *list = backend_list();
    for (int b = 0; b < BENCH_MAX_BACKENDS && list[b]; b++)
        if (!strcmp(list[b]->name, name))
            return b;
    return -1;
}

/* One run returning the mark-to-mark time and, for dbt, its translation statistics. */
static int run_timed(const struct backend_ops *ops, const struct code *c, double *ns,
                     double *translate_ns, double *blocks, double *insns, char *why, size_t ws)
{
    struct machine_result *r = run_code(ops, c, 60, 2, why, ws);
    if (!r)
        return -1;
    *ns = (double)(r->mark_ns[1] - r->mark_ns[0]);
    for (unsigned i = 0; i < r->backend_stat_count; i++) {
        if (translate_ns && !strcmp(r->backend_stats[i].name, "translate_ns"))
            *translate_ns = (double)r->backend_stats[i].value;
        if (blocks && !strcmp(r->backend_stats[i].name, "blocks_translated"))
            *blocks = (double)r->backend_stats[i].value;
        if (insns && !strcmp(r->backend_stats[i].name, "guest_insns_translated"))
            *insns = (double)r->backend_stats[i].value;
    }
    free(r);
    return 0;
}

/* mark 1; m executions of the block {body; dec r15; jnz}; mark 2; exit */
static void build_sweep_guest(const uint8_t *body, size_t len, uint32_t m, struct code *c)
{
    c->n = 0;
    emit_mark(c, 1);
    emit_loop(c, m, body, len);
    emit_mark(c, 2);
    emit_mark(c, 3);
    EMIT(c, 0x31, 0xc0, 0xe6, 0xf4, 0xf4);
}

/* N distinct blocks {cli; jmp next}, the whole chain run r times. */
static void build_footprint_guest(unsigned nblocks, unsigned reps, struct code *c, size_t cap)
{
    c->n = 0;
    emit_mark(c, 1);
    EMIT(c, 0x49, 0xc7, 0xc7);
    emit_u32(c, reps); /* mov r15, reps */
    size_t top = c->n;
    for (unsigned i = 0; i < nblocks && c->n + 16 < cap; i++) {
        EMIT(c, 0xfa, 0xe9); /* cli; jmp +0 (the next block: a block boundary) */
        emit_u32(c, 0);
    }
    EMIT(c, 0x49, 0xff, 0xcf, 0x0f, 0x85); /* dec r15; jnz top */
    emit_u32(c, (uint32_t)(int32_t)(top - (c->n + 4)));
    emit_mark(c, 2);
    emit_mark(c, 3);
    EMIT(c, 0x31, 0xc0, 0xe6, 0xf4, 0xf4);
}

/* N distinct blocks {add; xor; lea; mov; shl; sub; cli; jmp next}: 8 instructions each. */
static void build_long_block_guest(unsigned nblocks, struct code *c)
{
    static const uint8_t block[] = {
        0x48, 0x01, 0xd8,          /* add rax, rbx */
        0x48, 0x31, 0xd1,          /* xor rcx, rdx */
        0x48, 0x8d, 0x76, 0x08,    /* lea rsi, [rsi+8] */
        0x48, 0x89, 0xf7,          /* mov rdi, rsi */
        0x48, 0xd1, 0xe0,          /* shl rax, 1 */
        0x48, 0x29, 0xc2,          /* sub rdx, rax */
        0xfa,                      /* cli */
        0xe9, 0,    0,    0,    0, /* jmp next block */
    };
    c->n = 0;
    emit_mark(c, 1);
    for (unsigned i = 0; i < nblocks && c->n + sizeof(block) + 32 < sizeof(c->b); i++)
        emit(c, block, sizeof(block));
    emit_mark(c, 2);
    emit_mark(c, 3);
    EMIT(c, 0x31, 0xc0, 0xe6, 0xf4, 0xf4);
}

/* The floor for B: a bare ZydisDecoderDecodeFull over the guest's bytes, in this process. */
static double bare_decode_ns(const struct code *c)
{
    ZydisDecoder d;
    ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    ZydisDecodedInstruction zi;
    ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
    double t0 = now_s();
    unsigned count = 0;
    for (unsigned rep = 0; rep < 4; rep++)
        for (size_t off = 0; off < c->n; count++) {
            if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&d, c->b + off, c->n - off, &zi, zo)))
                break;
            off += zi.length;
        }
    return (now_s() - t0) * 1e9 / count;
}

static double median_of(double *v, unsigned n)
{
    struct bench_stats s;
    bench_stats_of(v, n, &s);
    return s.median;
}

void bench_measure_breakeven(struct bench_results *res, const struct bench_options *o)
{
    int trap = backend_index("trap_emulate"), dbt = backend_index("dbt");
    const struct backend_ops *const *list = backend_list();
    bool have = trap >= 0 && dbt >= 0 && res->host.backend_available[trap] &&
                res->host.backend_available[dbt];
    unsigned reps = o->quick ? 3 : 5;
    struct bench_translation *tr = &res->translation;
    /* B: translate guests whose every block is new (the footprint guest, r = 1) - a short one
     * (cold start) and a long one (start-up amortized) - and the floor: a bare
     * ZydisDecoderDecodeFull of the same instructions in this process. */
    if (!have) {
        snprintf(tr->why_not, sizeof(tr->why_not), "needs both trap_emulate and dbt");
    } else {
        static struct code guests[BENCH_B_CASES];
        static const struct {
            const char *name, *description;
            unsigned blocks, insns_per_block;
        } shape[BENCH_B_CASES] = {
            [BENCH_B_COLD] = {"cold", "first blocks of a fresh process", 512, 2},
            [BENCH_B_BULK] = {"bulk", "one run, start-up amortized", 4096, 2},
            [BENCH_B_LONG] = {"long blocks", "one run, 8-instruction blocks", 1024, 8},
        };
        double per_block[BENCH_B_CASES][32], per_insn[BENCH_B_CASES][32], dec[BENCH_B_CASES][32];
        unsigned got = 0;
        for (unsigned k = 0; k < BENCH_B_CASES; k++) {
            if (shape[k].insns_per_block == 2)
                build_footprint_guest(shape[k].blocks, 1, &guests[k], sizeof(guests[k].b));
            else
                build_long_block_guest(shape[k].blocks, &guests[k]);
            tr->cases[k].name = shape[k].name;
            tr->cases[k].description = shape[k].description;
            tr->cases[k].blocks = shape[k].blocks;
            tr->cases[k].insns_per_block = shape[k].insns_per_block;
        }
        for (unsigned r = 0; r < reps; r++) {
            bool ok = true;
            for (unsigned k = 0; k < BENCH_B_CASES && ok; k++) {
                double ns, tns = 0, blocks = 0, insns = 0;
                ok = run_timed(list[dbt], &guests[k], &ns, &tns, &blocks, &insns, tr->why_not,
                               sizeof(tr->why_not)) == 0 &&
                     blocks > 0 && insns > 0;
                if (!ok)
                    break;
                per_block[k][got] = tns / blocks;
                per_insn[k][got] = tns / insns;
                dec[k][got] = bare_decode_ns(&guests[k]);
            }
            if (!ok)
                break;
            got++;
        }
        if (got == reps) {
            tr->measured = true;
            for (unsigned k = 0; k < BENCH_B_CASES; k++) {
                struct bench_b_case *bc = &tr->cases[k];
                bench_stats_of(per_block[k], got, &bc->ns_per_block);
                bench_stats_of(per_insn[k], got, &bc->ns_per_insn);
                bench_stats_of(dec[k], got, &bc->decode_ns_per_insn);
                fprintf(stderr,
                        "bench: dbt translation B (%-11s %4u x %u insns) = %4.0f ns per guest "
                        "instruction, %4.0f per block; bare decode %3.0f ns; B/decode %.2f\n",
                        bc->name, bc->blocks, bc->insns_per_block, bc->ns_per_insn.median,
                        bc->ns_per_block.median, bc->decode_ns_per_insn.median,
                        bc->ns_per_insn.median / bc->decode_ns_per_insn.median);
            }
        }
    }
    /* Break-even per trapped class */
    static const char *classes[] = {"cli", "sti", "cpuid", "rdtsc", "mov_cr3"};
    static const uint32_t sweep[] = {1, 2, 3, 4, 6, 8, 12, 16, 32, 64};
    unsigned nsweep = o->quick ? 7 : 10;
    res->breakeven_count = 0;
    for (unsigned k = 0; k < sizeof(classes) / sizeof(classes[0]); k++) {
        struct bench_breakeven *be = &res->breakeven[res->breakeven_count++];
        be->class_name = classes[k];
        const struct bench_class_result *cr = NULL;
        for (unsigned i = 0; i < res->class_count; i++)
            if (!strcmp(res->classes[i].class_name, classes[k]))
                cr = &res->classes[i];
        if (!have || !cr || !cr->measured[trap] || !cr->measured[dbt] || !tr->measured) {
            snprintf(be->why_not, sizeof(be->why_not), "%s",
                     !have ? "needs both trap_emulate and dbt" : "h, p or B not measured");
            continue;
        }
        const struct class_spec *spec = NULL;
        for (unsigned i = 0; i < sizeof(class_specs) / sizeof(class_specs[0]); i++)
            if (!strcmp(class_specs[i].name, classes[k]))
                spec = &class_specs[i];
        be->h_ns = cr->ns[trap].median;
        be->p_ns = cr->ns[dbt].median;
        /* the loop block is the instruction plus dec/jnz: translation cost of ~3 instructions,
         * at the cold-start rate (each sweep point is a fresh process with a few blocks) */
        be->b_ns = tr->cases[BENCH_B_COLD].ns_per_insn.median * 3;
        be->predicted = be->h_ns > be->p_ns ? be->b_ns / (be->h_ns - be->p_ns) : 0;
        fprintf(stderr, "bench: break-even %-8s ", classes[k]);
        bool ok = true;
        double rep_cross[32] = {0}; /* each repetition's own crossover */
        for (unsigned i = 0; i < nsweep && ok; i++) {
            struct code c;
            struct code setup_and_loop;
            setup_and_loop.n = 0;
            emit(&setup_and_loop, spec->setup, spec->setup_len);
            build_sweep_guest(spec->body, spec->body_len, sweep[i], &c);
            memmove(c.b + setup_and_loop.n, c.b, c.n);
            memcpy(c.b, setup_and_loop.b, setup_and_loop.n);
            c.n += setup_and_loop.n;
            double t[32], d[32];
            for (unsigned r = 0; r < reps && ok; r++) {
                ok = run_timed(list[trap], &c, &t[r], NULL, NULL, NULL, be->why_not,
                               sizeof(be->why_not)) == 0 &&
                     run_timed(list[dbt], &c, &d[r], NULL, NULL, NULL, be->why_not,
                               sizeof(be->why_not)) == 0;
            }
            if (!ok)
                break;
            for (unsigned r = 0; r < reps; r++)
                if (!rep_cross[r] && d[r] <= t[r])
                    rep_cross[r] = sweep[i];
            be->m[i] = sweep[i];
            be->trap_ns[i] = median_of(t, reps);
            be->dbt_ns[i] = median_of(d, reps);
            be->sweep_count = i + 1;
            double ms[BENCH_SWEEP_MAX];
            for (unsigned j = 0; j <= i; j++)
                ms[j] = be->m[j];
            be->observed = bench_crossover_first(ms, be->trap_ns, be->dbt_ns, i + 1);
            fputc('.', stderr);
        }
        be->measured = ok;
        be->observed_min = be->observed_max = 0;
        for (unsigned r = 0; r < reps && ok; r++) {
            double x = rep_cross[r] ? rep_cross[r] : 1e9; /* no crossover within the sweep */
            if (!r || x < be->observed_min)
                be->observed_min = x;
            if (!r || x > be->observed_max)
                be->observed_max = x;
        }
        fprintf(stderr, " predicted m* %.2f, observed %.0f (per repetition %.0f-%.0f)\n",
                be->predicted, be->observed, be->observed_min, be->observed_max);
    }
    /* Footprint x repetitions */
    struct bench_footprint *fp = &res->footprint;
    static const unsigned nb[BENCH_FOOT_N] = {1, 16, 256, 2048};
    static const unsigned rr[BENCH_FOOT_R] = {1, 2, 4, 16, 64};
    memcpy(fp->blocks, nb, sizeof(nb));
    memcpy(fp->reps, rr, sizeof(rr));
    if (!have) {
        snprintf(fp->why_not, sizeof(fp->why_not), "needs both trap_emulate and dbt");
        return;
    }
    fprintf(stderr, "bench: footprint x repetitions ");
    static struct code c;
    unsigned freps = o->quick ? 1 : 3;
    for (unsigned i = 0; i < BENCH_FOOT_N; i++)
        for (unsigned j = 0; j < BENCH_FOOT_R; j++) {
            build_footprint_guest(nb[i], rr[j], &c, sizeof(c.b));
            double t[8], d[8];
            for (unsigned r = 0; r < freps; r++)
                if (run_timed(list[trap], &c, &t[r], NULL, NULL, NULL, fp->why_not,
                              sizeof(fp->why_not)) < 0 ||
                    run_timed(list[dbt], &c, &d[r], NULL, NULL, NULL, fp->why_not,
                              sizeof(fp->why_not)) < 0) {
                    fprintf(stderr, "failed: %s\n", fp->why_not);
                    return;
                }
            fp->trap_ns[i][j] = median_of(t, freps);
            fp->dbt_ns[i][j] = median_of(d, freps);
            fputc('.', stderr);
        }
    fp->measured = true;
    fputc('\n', stderr);
}
