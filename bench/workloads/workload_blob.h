/* workload_blob.h - what every workload blob in bench/workloads/ shares.
 *
 * A workload is one flat, position-independent blob of machine code (listed in bench/workloads.def,
 * linked with bench/workload.ld, embedded in vmlab) whose first byte is
 *
 *     uint64_t workload_entry(uint64_t iterations)
 *
 * (SysV ABI). It runs `iterations` rounds of its kernel and returns a checksum of everything
 * it computed. Its working memory is on the stack (at most ~130 KiB): the blob has no
 * writable data of its own, because a writable section would need relocations or a fixed
 * address.
 *
 * The same bytes run natively, under qemu-user and valgrind, and as guest code on every
 * backend, so constraints are those of the compute kernel (bench/compute_kernel.c): no libc,
 * no SSE (-mgeneral-regs-only), no red zone, no relocations (function pointers are taken at
 * run time with RIP-relative LEA, jump tables are label differences resolved at link time).
 */
#ifndef VMLAB_WORKLOAD_BLOB_H
#define VMLAB_WORKLOAD_BLOB_H

#include <stdint.h>

#define WORKLOAD_ENTRY __attribute__((section(".text.entry"), used))
/* Keep a function a real, separately called function: no inlining, and with GCC no
 * interprocedural cloning or constant propagation into it either. */
#if defined(__clang__)
#define WORKLOAD_NOINLINE __attribute__((noinline))
#else
#define WORKLOAD_NOINLINE __attribute__((noipa))
#endif

static inline uint64_t workload_xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static inline uint64_t workload_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h;
}

#endif
