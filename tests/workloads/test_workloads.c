/* test_workloads.c - every benchmark workload (bench/workloads/) gives its native checksum as
 * a guest on every available backend.
 *
 * The workloads are compiled C of the kinds binary translators find hard (switch dispatch,
 * indirect calls, deep recursion, 3000 functions, string instructions); the translator has
 * never been tuned on them, so a wrong translation shows up here as a wrong checksum. Each
 * run is a separate guest in this process (no cmocka: its signal handlers would sit under
 * the backends').
 *
 * usage: test_workloads BACKEND [ITERATIONS [NAME]]   exit 0 = every checksum right, 1 = a
 *                                                     wrong result or a failed run, 77 =
 *                                                     BACKEND unavailable on this host;
 *                                                     NAME: that workload only
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "vmm/machine.h"

/* The native checksum, computed in a child: the native mapping takes the guest's addresses,
 * which the guest window needs in this process. 0, or -1 if the child failed. */
static int native_checksum(const struct bench_workload *w, uint64_t iterations, uint64_t *sum)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        size_t size = (w->size + 4095) & ~4095UL;
        uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        uint64_t (*fn)(uint64_t) = NULL;
        if (p != MAP_FAILED) {
            memcpy(p, w->blob, w->size);
            if (mprotect(p, size, PROT_READ | PROT_EXEC) == 0)
                fn = (uint64_t(*)(uint64_t))(void *)p;
        }
        uint64_t v = fn ? fn(iterations) : 0;
        _exit(fn && write(fds[1], &v, sizeof(v)) == sizeof(v) ? 0 : 1);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], sum, sizeof(*sum));
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return got == sizeof(*sum) && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s BACKEND [ITERATIONS [NAME]]\n", argv[0]);
        return 64;
    }
    const struct backend_ops *ops = backend_find(argv[1]);
    uint64_t iterations = argc > 2 ? strtoull(argv[2], NULL, 10) : 20;
    char reason[256] = "";
    if (!ops || ops->probe(reason, sizeof(reason)) < 0) {
        printf("SKIP: backend %s unavailable: %s\n", argv[1], ops ? reason : "unknown");
        return 77;
    }
    int failures = 0;
    unsigned count;
    const struct bench_workload *list = bench_workloads(&count);
    static struct bench_code code;
    for (unsigned i = 0; i < count; i++) {
        const struct bench_workload *w = &list[i];
        if (argc > 3 && strcmp(argv[3], w->name))
            continue;
        uint64_t want;
        if (native_checksum(w, iterations, &want) < 0) {
            printf("FAIL %s: the native run failed\n", w->name);
            failures++;
            continue;
        }
        /* call kernel(iterations); the checksum as two marks; exit */
        code.n = 0;
        code.overflow = false;
        BENCH_EMIT(&code, 0x48, 0xbf);
        bench_emit_u64(&code, iterations); /* movabs rdi, iterations */
        BENCH_EMIT(&code, 0xe8);           /* call kernel (patched below) */
        size_t call_end = code.n + 4;
        bench_emit_u32(&code, 0);
        BENCH_EMIT(&code, 0x48, 0x89, 0xc3); /* mov rbx, rax */
        bench_emit_mark_eax(&code);
        BENCH_EMIT(&code, 0x48, 0x89, 0xd8, 0x48, 0xc1, 0xe8, 0x20); /* mov rax, rbx; shr rax, 32 */
        bench_emit_mark_eax(&code);
        bench_emit_exit(&code);
        while (code.n % 64)
            BENCH_EMIT(&code, 0xcc);
        int32_t rel = (int32_t)(code.n - call_end);
        memcpy(code.b + call_end - 4, &rel, 4);
        bench_emit(&code, w->blob, w->size);
        if (code.overflow)
            return 70;
        struct machine_config config;
        machine_config_defaults(&config);
        config.backend = ops;
        config.raw_code = code.b;
        config.raw_size = code.n;
        config.timeout_s = 120;
        static struct machine_result r;
        memset(&r, 0, sizeof(r));
        machine_run(&config, &r);
        if (!r.guest_exited || r.status != 0 || r.mark_count < 2) {
            printf("FAIL %s on %s: run failed (status %d): %s\n", w->name, ops->name, r.status,
                   r.message);
            failures++;
            continue;
        }
        uint64_t got = (uint64_t)r.mark_value[1] << 32 | r.mark_value[0];
        printf("%s %s on %s: checksum %#llx, native %#llx\n", got == want ? "ok  " : "FAIL",
               w->name, ops->name, (unsigned long long)got, (unsigned long long)want);
        failures += got != want;
    }
    return failures ? 1 : 0;
}
