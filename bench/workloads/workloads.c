/* workloads.c - the workload table, native mapping and guest wrapper (workloads.h). */
#define _GNU_SOURCE
#include "workloads.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define BLOB(sym)                                                                                  \
    extern const unsigned char sym[];                                                              \
    extern const unsigned long sym##_size;
BLOB(bench_workload_interp)
BLOB(bench_workload_indirect)
BLOB(bench_workload_recursion)
BLOB(bench_workload_footprint)
BLOB(bench_workload_strings)

const struct perf_workload perf_workloads[] = {
    {"interpreter", "bytecode interpreter, switch dispatch", bench_workload_interp,
     &bench_workload_interp_size},
    {"indirect", "calls through 64 function pointers and vtables", bench_workload_indirect,
     &bench_workload_indirect_size},
    {"recursion", "deep recursion (calls and returns)", bench_workload_recursion,
     &bench_workload_recursion_size},
    {"footprint", "large footprint: 3000 generated functions", bench_workload_footprint,
     &bench_workload_footprint_size},
    {"strings", "memory/string kernels (rep movs/stos, hashing)", bench_workload_strings,
     &bench_workload_strings_size},
};
const unsigned perf_workload_count = sizeof(perf_workloads) / sizeof(perf_workloads[0]);

const struct perf_workload *perf_workload_find(const char *name)
{
    for (unsigned i = 0; i < perf_workload_count; i++)
        if (!strcmp(perf_workloads[i].name, name))
            return &perf_workloads[i];
    return NULL;
}

perf_workload_fn *perf_workload_native(const struct perf_workload *w)
{
    size_t size = (*w->size + 4095) & ~4095UL;
    void *p = mmap((void *)(uintptr_t)PERF_WORKLOAD_CODE_GPA, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != MAP_FAILED && p != (void *)(uintptr_t)PERF_WORKLOAD_CODE_GPA) {
        munmap(p, size); /* a kernel that ignored the flag */
        p = MAP_FAILED;
    }
    if (p == MAP_FAILED) /* the address is taken (a tool's own mapping): anywhere */
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memcpy(p, w->code, *w->size);
    if (mprotect(p, size, PROT_READ | PROT_EXEC) < 0)
        return NULL;
    return (perf_workload_fn *)p;
}

static size_t put(uint8_t *c, size_t n, const void *bytes, size_t len)
{
    memcpy(c + n, bytes, len);
    return n + len;
}
#define PUT(...)                                                                                   \
    n = put(c, n, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))

int perf_workload_guest(const struct perf_workload *w, uint64_t iterations, uint8_t **code,
                        size_t *size)
{
    const size_t head = PERF_WORKLOAD_CODE_GPA - GUEST_IMAGE_BASE;
    uint8_t *c = malloc(head + *w->size);
    if (!c)
        return -ENOMEM;
    memset(c, 0xCC, head);
    size_t n = 0;
    PUT(0xb8, 1, 0, 0, 0, 0x66, 0xba, 0x20, 0x05, 0xef); /* mov eax, 1; mov dx, 0x520; out */
    PUT(0x48, 0xbf);                                     /* movabs rdi, iterations */
    n = put(c, n, &iterations, 8);
    PUT(0xe8); /* call workload_entry */
    int32_t rel = (int32_t)(head - (n + 4));
    n = put(c, n, &rel, 4);
    PUT(0x48, 0x89, 0xc3);                               /* mov rbx, rax */
    PUT(0xb8, 2, 0, 0, 0, 0x66, 0xba, 0x20, 0x05, 0xef); /* mark 2 */
    PUT(0x89, 0xd8, 0xef);                               /* mov eax, ebx; out: checksum low */
    PUT(0x48, 0x89, 0xd8, 0x48, 0xc1, 0xe8, 0x20, 0xef); /* mov rax, rbx; shr rax, 32; out */
    PUT(0x31, 0xc0, 0xe6, 0xf4, 0xf4);                   /* xor eax, eax; out 0xf4, al; hlt */
    memcpy(c + head, w->code, *w->size);
    *code = c;
    *size = head + *w->size;
    return 0;
}
