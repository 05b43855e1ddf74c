/* bench_trap_floor.c - experiment "trap_floor": trap_emulate's cost per trapped instruction against
 * the kernel's floor for the same instruction, and what each part of the handler's hot path
 * takes.
 *
 * The floor of an instruction: a fresh child process (no vmlab state, no Syscall User
 * Dispatch, no seccomp) executes it N times in a loop with a SIGSEGV handler that only steps
 * over it - the #GP, the kernel's signal delivery, an empty handler, rt_sigreturn. A second
 * floor adds Syscall User Dispatch, which trap_emulate needs (guest SYSCALLs must not reach the
 * kernel) and which puts every system call of the thread on the kernel's slow path. The trap:
 * the class's loop of N instructions on trap_emulate, minus the same loop without them,
 * in the guest thread's CPU time between marks (trap_emulate's signal handling is all on that
 * thread), with trap_emulate's defaults and with its fast path (CLI/STI/RDTSC emulated in the
 * signal entry), its direct return (no rt_sigreturn) or both switched off (VMLAB_TRAP). Everything
 * alternates within each repetition; medians. CPU time, not wall time: the machine is shared,
 * and waiting for a core is not a cost of the mechanism.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "bench_internal.h"
#include "vmm/guest_layout.h"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#endif

struct tf_class {
    const char *name, *what;
    uint8_t setup[16];
    size_t setup_len;
    uint8_t body[8];
    size_t body_len;
    const char *traps_if; /* trap_emulate host_has() condition, or NULL */
    bool io_exit;         /* reaches the VMM: not in the targets */
};
#define B(...) {__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__})
static const struct tf_class tf_classes[] = {
    {"cli", "CLI", {0}, 0, B(0xfa), NULL, false},
    {"sti", "STI (IF already set: no shadow)", {0}, 0, B(0xfb), NULL, false},
    {"mov_cr3", "MOV CR3, RBX (the same value)", B(0x0f, 0x20, 0xdb), B(0x0f, 0x22, 0xdb), NULL,
     false},
    /* LGDT [RIP-relative image]: the guest's own GDTR, written by the setup (below) */
    {"lgdt", "LGDT of the current GDTR", {0}, 0, B(0x0f, 0x01, 0x15, 0, 0, 0, 0), NULL, false},
    {"rdtsc",
     "RDTSC (CR4.TSD; the emulation reads the host clock)",
     {0},
     0,
     B(0x0f, 0x31),
     "rdtsc_traps",
     false},
    {"out", "OUT DX, AL to the scratch port: an exit to the VMM", B(0x66, 0xba, 0x30, 0x05),
     B(0xee), NULL, true},
};
#define TF_CLASSES (sizeof(tf_classes) / sizeof(tf_classes[0]))

static const struct {
    const char *name, *options;
} tf_configs[] = {
    {"trap_emulate", ""},
    {"no fast path", "fast_path=off"},
    {"no direct return", "direct_return=off"},
    {"neither", "fast_path=off,direct_return=off"},
};
#define TF_CONFIGS (sizeof(tf_configs) / sizeof(tf_configs[0]))

struct tf_row {
    bool measured;
    char why_not[BENCH_WHY_SIZE];
    struct bench_stats floor_ns, floor_sud_ns, trap_ns[TF_CONFIGS];
};

struct trap_floor_state {
    bool measured;
    char why_not[BENCH_WHY_SIZE];
    unsigned iterations;
    struct tf_row row[TF_CLASSES];
};

static double thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile int skip_len;
static void skip_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    ((ucontext_t *)ucv)->uc_mcontext.gregs[REG_RIP] += skip_len;
}

/* In a child: the instruction N times in host code under an empty handler; ns per trap. */
static double floor_child(const struct tf_class *k, unsigned n, bool sud)
{
    uint8_t *x = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (x == MAP_FAILED)
        return -1;
    size_t m = 0;
    static uint8_t gdtr[10];
    __asm__ volatile("sgdt %0" : "=m"(gdtr));
    x[m++] = 0x53; /* push rbx (callee-saved) */
    if (!strcmp(k->name, "mov_cr3")) {
        x[m++] = 0x31, x[m++] = 0xdb; /* xor ebx, ebx: no CR3 read needed, it faults anyway */
    }
    x[m++] = 0xb9; /* mov ecx, n */
    memcpy(x + m, &n, 4);
    m += 4;
    size_t top = m;
    memcpy(x + m, k->body, k->body_len);
    if (!strcmp(k->name, "lgdt")) { /* [rip + disp32] -> the GDTR copy */
        int32_t rel = (int32_t)((uintptr_t)gdtr - (uintptr_t)(x + m + k->body_len));
        memcpy(x + m + 3, &rel, 4);
    }
    m += k->body_len;
    x[m++] = 0xff, x[m++] = 0xc9; /* dec ecx */
    x[m++] = 0x75;
    x[m] = (uint8_t)(top - (m + 1));
    m++;
    x[m++] = 0x5b, x[m++] = 0xc3; /* pop rbx; ret */
    if (mprotect(x, 4096, PROT_READ | PROT_EXEC) < 0)
        return -1;
    skip_len = (int)k->body_len;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = skip_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    if (!strcmp(k->name, "rdtsc") && prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0) < 0)
        return -1;
    static uint8_t selector; /* ALLOW: host code is outside the range anyway */
    if (sud && prctl(PR_SET_SYSCALL_USER_DISPATCH, 1, GUEST_SPACE_END,
                     0x800000000000ULL - GUEST_SPACE_END, &selector) < 0)
        return -2;
    ((void (*)(void))x)(); /* warm */
    double t0 = thread_cpu_ns();
    ((void (*)(void))x)();
    return (thread_cpu_ns() - t0) / n;
}

static double floor_of(const struct tf_class *k, unsigned n, bool sud)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        double v = floor_child(k, n, sud);
        _exit(write(fds[1], &v, sizeof(v)) == sizeof(v) ? 0 : 1);
    }
    close(fds[1]);
    double v = -1;
    if (read(fds[0], &v, sizeof(v)) != sizeof(v))
        v = -1;
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return v;
}

static void build_guest(const struct tf_class *k, uint32_t n, struct bench_code *c)
{
    c->n = 0;
    c->overflow = false;
    bench_emit(c, k->setup, k->setup_len);
    size_t gdtr_at = 0;
    if (!strcmp(k->name, "lgdt")) { /* jmp over a GDTR image of the guest's own GDT */
        BENCH_EMIT(c, 0xeb, 10);
        gdtr_at = c->n;
        uint16_t limit = GUEST_GDT_LIMIT;
        uint64_t base = GUEST_RAM_BASE + GUEST_GDT_OFFSET;
        bench_emit(c, &limit, 2);
        bench_emit_u64(c, base);
    }
    bench_emit_mark(c, 1);
    static const uint8_t nothing[1];
    if (gdtr_at) { /* the loop by hand: the LGDT's displacement depends on where it is */
        BENCH_EMIT(c, 0x49, 0xc7, 0xc7);
        bench_emit_u32(c, n);
        size_t top = c->n;
        BENCH_EMIT(c, 0x0f, 0x01, 0x15);
        bench_emit_u32(c, (uint32_t)(int32_t)((int64_t)gdtr_at - (int64_t)(c->n + 4)));
        BENCH_EMIT(c, 0x49, 0xff, 0xcf, 0x0f, 0x85); /* dec r15; jnz top */
        bench_emit_u32(c, (uint32_t)(int32_t)((int64_t)top - (int64_t)(c->n + 4)));
    } else {
        bench_emit_loop(c, n, k->body, k->body_len);
    }
    bench_emit_mark(c, 2);
    bench_emit_loop(c, n, nothing, 0);
    bench_emit_mark(c, 3);
    bench_emit_exit(c);
}

static double trap_of(const struct backend_ops *trap, const struct bench_code *c, unsigned n,
                      const char *options, char *why, size_t why_size)
{
    setenv("VMLAB_TRAP", options, 1); /* read by the vCPU in the child */
    struct bench_marks marks = {.cpu_time = true};
    struct machine_result *r = bench_run_guest_marks(trap, c, 60.0, 3, &marks, why, why_size);
    unsetenv("VMLAB_TRAP");
    if (!r)
        return -1;
    double loop = (double)(r->mark_cpu_ns[1] - r->mark_cpu_ns[0]);
    double base = (double)(r->mark_cpu_ns[2] - r->mark_cpu_ns[1]);
    free(r);
    return (loop - base) / n;
}

static void trap_floor_measure(struct bench_ctx *ctx, void *state)
{
    struct trap_floor_state *st = state;
    const struct bench_host *h = &ctx->host;
    int t = bench_backend_index(h, "trap_emulate");
    if (t < 0 || !h->backend_available[t]) {
        snprintf(st->why_not, sizeof(st->why_not), "trap_emulate unavailable");
        return;
    }
    const struct backend_ops *trap = h->backend[t];
    unsigned n = st->iterations = ctx->opt->quick ? 5000 : 20000;
    unsigned reps = ctx->opt->repetitions;
    static struct bench_code code;
    for (unsigned i = 0; i < TF_CLASSES; i++) {
        const struct tf_class *k = &tf_classes[i];
        struct tf_row *row = &st->row[i];
        if (k->traps_if && !(trap->host_has && trap->host_has(k->traps_if))) {
            snprintf(row->why_not, sizeof(row->why_not),
                     "does not trap on this host's trap_emulate (%s)", k->traps_if);
            continue;
        }
        bench_progress(ctx, "bench: trap_floor %-8s ", k->name);
        build_guest(k, n, &code);
        double fl[32], fs[32], tr[TF_CONFIGS][32];
        unsigned got = 0;
        for (unsigned r = 0; r < reps && !row->why_not[0]; r++) {
            fl[got] = floor_of(k, n, false);
            fs[got] = floor_of(k, n, true);
            if (fl[got] < 0 || fs[got] < 0) {
                snprintf(row->why_not, sizeof(row->why_not), "the floor could not be measured%s",
                         fs[got] == -2 ? " (no Syscall User Dispatch)" : "");
                break;
            }
            for (unsigned c = 0; c < TF_CONFIGS && !row->why_not[0]; c++)
                tr[c][got] = trap_of(trap, &code, n, tf_configs[c].options, row->why_not,
                                     sizeof(row->why_not));
            if (row->why_not[0])
                break;
            got++;
            bench_progress(ctx, ".");
        }
        if (got != reps) {
            bench_progress(ctx, " not measured: %s\n", row->why_not);
            continue;
        }
        bench_stats_of(fl, got, &row->floor_ns);
        bench_stats_of(fs, got, &row->floor_sud_ns);
        for (unsigned c = 0; c < TF_CONFIGS; c++)
            bench_stats_of(tr[c], got, &row->trap_ns[c]);
        row->measured = true;
        bench_progress(ctx, " floor %.0f ns, trap %.0f ns (%.2fx)\n", row->floor_ns.median,
                       row->trap_ns[0].median, row->trap_ns[0].median / row->floor_ns.median);
    }
    st->measured = true;
}

static void trap_floor_write_files(struct bench_ctx *ctx, const void *state)
{
    const struct trap_floor_state *st = state;
    FILE *f = bench_file_open(ctx, "trap_floor.csv");
    if (!f)
        return;
    fprintf(f, "class,measured,floor_ns,floor_with_sud_ns");
    for (unsigned c = 0; c < TF_CONFIGS; c++)
        fprintf(f, ",\"%s_ns\"", tf_configs[c].name);
    fprintf(f, ",ratio_to_floor,note\n");
    for (unsigned i = 0; i < TF_CLASSES; i++) {
        const struct tf_row *row = &st->row[i];
        fprintf(f, "%s,%s", tf_classes[i].name, row->measured ? "yes" : "no");
        if (!row->measured) {
            fprintf(f, ",,");
            for (unsigned c = 0; c < TF_CONFIGS; c++)
                fputc(',', f);
            fprintf(f, ",\"%s\"\n", row->why_not);
            continue;
        }
        fprintf(f, ",%.1f,%.1f", row->floor_ns.median, row->floor_sud_ns.median);
        for (unsigned c = 0; c < TF_CONFIGS; c++)
            fprintf(f, ",%.1f", row->trap_ns[c].median);
        fprintf(f, ",%.3f,\n", row->trap_ns[0].median / row->floor_ns.median);
    }
    bench_file_close(ctx, f);
}

static void trap_floor_write_section(struct bench_ctx *ctx, const void *state, struct bench_doc *d)
{
    const struct trap_floor_state *st = state;
    bench_doc_heading(d, "trap_emulate against the kernel's floor");
    if (!st->measured) {
        bench_doc_para(d, "Not measured: %s.", st->why_not);
        return;
    }
    bench_doc_para(d,
                   "Per trapped instruction, in CPU time of the thread (the signal handling is "
                   "all on it): the **floor** is an empty-handler round trip of the same "
                   "instruction in a plain process (#GP, signal delivery, a handler that only "
                   "steps over it, rt_sigreturn); **floor + SUD** the same with Syscall User "
                   "Dispatch on, which trap_emulate needs to catch guest system calls and which "
                   "makes every system call of the thread take the kernel's slow path. Then "
                   "trap_emulate, and trap_emulate without each part of its hot path "
                   "(VMLAB_TRAP): the fast path emulates CLI, STI and RDTSC in the signal entry, "
                   "before any C code; the direct return resumes the guest without "
                   "rt_sigreturn (rt_sigprocmask, XRSTOR, IRETQ). The handler's share is what "
                   "trap_emulate costs above the floor; below 1.0 the direct return saves more "
                   "than the handler costs. %u instructions per loop, medians of %u "
                   "repetitions. Data: trap_floor.csv.",
                   st->iterations, ctx->opt->repetitions);
    const char *heads[4 + TF_CONFIGS];
    heads[0] = "class";
    heads[1] = "floor (ns)";
    heads[2] = "floor + SUD (ns)";
    for (unsigned c = 0; c < TF_CONFIGS; c++)
        heads[3 + c] = tf_configs[c].name;
    heads[3 + TF_CONFIGS] = "trap_emulate / floor";
    bench_doc_table(d, 4 + TF_CONFIGS, heads);
    for (unsigned i = 0; i < TF_CLASSES; i++) {
        const struct tf_row *row = &st->row[i];
        bench_doc_cell(d, "%s: %s", tf_classes[i].name, tf_classes[i].what);
        if (!row->measured) {
            bench_doc_cell(d, "not measured: %s", row->why_not);
            for (unsigned c = 0; c < TF_CONFIGS + 2; c++)
                bench_doc_cell(d, "%s", "");
            continue;
        }
        bench_doc_cell(d, "%.0f", row->floor_ns.median);
        bench_doc_cell(d, "%.0f", row->floor_sud_ns.median);
        for (unsigned c = 0; c < TF_CONFIGS; c++)
            bench_doc_cell(d, "%.0f (%+.0f)", row->trap_ns[c].median,
                           row->trap_ns[c].median - row->floor_ns.median);
        bench_doc_cell(d, "%.2fx%s", row->trap_ns[0].median / row->floor_ns.median,
                       tf_classes[i].io_exit ? " (an exit to the VMM)" : "");
    }
    bench_doc_table_end(d);
}

static void trap_floor_write_json(struct bench_ctx *ctx, const void *state, FILE *f)
{
    (void)ctx;
    const struct trap_floor_state *st = state;
    bench_json_key(f, "trap_floor");
    if (!st->measured) {
        bench_json_not_measured(f, st->why_not);
        return;
    }
    fputc('[', f);
    for (unsigned i = 0; i < TF_CLASSES; i++) {
        const struct tf_row *row = &st->row[i];
        fprintf(f, "%s{\"class\": ", i ? ", " : "");
        bench_json_str(f, tf_classes[i].name);
        if (!row->measured) {
            fprintf(f, ", \"result\": ");
            bench_json_not_measured(f, row->why_not);
            fputc('}', f);
            continue;
        }
        fprintf(f, ", \"floor_ns\": ");
        bench_json_stats(f, &row->floor_ns);
        fprintf(f, ", \"floor_with_sud_ns\": ");
        bench_json_stats(f, &row->floor_sud_ns);
        for (unsigned c = 0; c < TF_CONFIGS; c++) {
            fprintf(f, ", ");
            bench_json_str(f, tf_configs[c].name);
            fprintf(f, ": ");
            bench_json_stats(f, &row->trap_ns[c]);
        }
        fputc('}', f);
    }
    fputc(']', f);
}

const struct bench_experiment bench_experiment_trap_floor = {
    .name = "trap_floor",
    .summary = "trap_emulate per trapped instruction against the kernel's empty-handler floor",
    .state_size = sizeof(struct trap_floor_state),
    .measure = trap_floor_measure,
    .write_files = trap_floor_write_files,
    .write_section = trap_floor_write_section,
    .write_json = trap_floor_write_json,
};
