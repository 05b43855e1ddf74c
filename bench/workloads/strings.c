/* strings.c - workload "strings": memory and string kernels.
 *
 * Per iteration, on a 64 KiB source and a 64 KiB destination on the stack:
 *   - REP STOSQ fill of 16 KiB and REP STOSB of an odd-length tail (memset);
 *   - REP MOVSQ copy of 32 KiB and REP MOVSB copies of odd lengths at odd offsets (memcpy);
 *   - FNV-1a over 8 KiB, byte at a time (a hash table's string hash);
 *   - a word-at-a-time multiplicative hash over 32 KiB;
 *   - a byte compare loop (memcmp) and a zero-byte scan (strlen) over 4 KiB.
 * The string instructions are written out (inline assembly): with -fno-builtin the compiler
 * would not emit them, and they are what libc's memcpy/memset use for these sizes.
 */
#include "workload_blob.h"

#define BUF (64u << 10)

static inline void rep_stosq(void *dst, uint64_t value, uint64_t count)
{
    __asm__ volatile("rep stosq" : "+D"(dst), "+c"(count) : "a"(value) : "memory");
}
static inline void rep_stosb(void *dst, uint8_t value, uint64_t count)
{
    __asm__ volatile("rep stosb" : "+D"(dst), "+c"(count) : "a"(value) : "memory");
}
static inline void rep_movsq(void *dst, const void *src, uint64_t count)
{
    __asm__ volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(count) : : "memory");
}
static inline void rep_movsb(void *dst, const void *src, uint64_t count)
{
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(count) : : "memory");
}

WORKLOAD_NOINLINE static uint64_t fnv1a(const uint8_t *p, unsigned n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

WORKLOAD_NOINLINE static uint64_t word_hash(const uint64_t *p, unsigned n)
{
    uint64_t h = 0;
    for (unsigned i = 0; i < n; i++) {
        h ^= p[i] * 0x87C37B91114253D5ull;
        h = (h << 31 | h >> 33) * 5 + 0x52DCE729;
    }
    return h;
}

WORKLOAD_NOINLINE static int compare(const uint8_t *a, const uint8_t *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

WORKLOAD_NOINLINE static unsigned length(const uint8_t *s, unsigned max)
{
    unsigned n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

WORKLOAD_ENTRY uint64_t workload_entry(uint64_t iterations)
{
    uint64_t space[2 * BUF / 8]; /* on the stack: the blob has no data of its own */
    uint8_t *src = (uint8_t *)space, *dst = src + BUF;
    uint64_t s = 0x6A09E667F3BCC908ull;
    for (unsigned i = 0; i < BUF / 8; i++)
        ((uint64_t *)src)[i] = workload_xorshift(&s);
    uint64_t sum = 0;
    for (uint64_t it = 0; it < iterations; it++) {
        unsigned odd = (unsigned)(it * 37 % 251) + 1;
        rep_stosq(dst, sum | 0x0101010101010101ull, (16u << 10) / 8);
        rep_stosb(dst + (16u << 10), (uint8_t)(it | 1), odd);
        rep_movsq(dst + (20u << 10), src, (32u << 10) / 8);
        rep_movsb(dst + 3, src + (it & 1023) + 1, 4096 + odd);
        src[it % BUF] ^= (uint8_t)sum;
        sum = workload_mix(sum, fnv1a(dst, 8u << 10));
        sum = workload_mix(sum, word_hash((const uint64_t *)(dst + (20u << 10)), (32u << 10) / 8));
        sum = workload_mix(sum, (uint64_t)(int64_t)compare(dst + 3, src + (it & 1023) + 1, 4096));
        dst[(16u << 10) + odd] = 0;
        sum = workload_mix(sum, length(dst + (16u << 10), 4096));
    }
    return sum;
}
