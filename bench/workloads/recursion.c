/* recursion.c - workload "recursion": deep and wide recursion, i.e. calls and returns.
 *
 * Per iteration:
 *   - naive Fibonacci fib(18) (~8,400 calls, call depth 18: the return-heavy classic);
 *   - a recursive fold over a 2,000-node linked list (call depth 2,000, so the return
 *     stack buffer of any CPU overflows and returns must be predicted some other way);
 *   - a recursive sum over a 511-node binary tree in array layout (two calls per node).
 * Each combining step uses the callee's result non-associatively, so the compiler cannot turn
 * the recursion into a loop (no accumulator or tail-call elimination).
 */
#include "workload_blob.h"

struct node {
    struct node *next;
    uint64_t value;
};

WORKLOAD_NOINLINE static uint64_t fib(uint64_t n)
{
    if (n < 2)
        return n;
    return fib(n - 1) + fib(n - 2);
}

WORKLOAD_NOINLINE static uint64_t fold(const struct node *p)
{
    if (!p)
        return 0x1234567;
    uint64_t r = fold(p->next);
    return (r ^ p->value) * 0x100000001B3ull + (r >> 29);
}

WORKLOAD_NOINLINE static uint64_t tree(const uint64_t *t, unsigned i, unsigned n)
{
    if (i >= n)
        return 1;
    uint64_t l = tree(t, 2 * i + 1, n), r = tree(t, 2 * i + 2, n);
    return (l * 31 + r) ^ t[i];
}

#define LIST_N 2000
#define TREE_N 511

WORKLOAD_ENTRY uint64_t workload_entry(uint64_t iterations)
{
    struct node list[LIST_N];
    uint64_t t[TREE_N];
    uint64_t s = 0xDA942042E4DD58B5ull;
    for (int i = 0; i < LIST_N; i++) {
        list[i].next = i + 1 < LIST_N ? &list[i + 1] : 0;
        list[i].value = workload_xorshift(&s);
    }
    for (int i = 0; i < TREE_N; i++)
        t[i] = workload_xorshift(&s);
    uint64_t sum = 0;
    for (uint64_t it = 0; it < iterations; it++) {
        sum = workload_mix(sum, fib(18));
        list[it % LIST_N].value += sum;
        sum = workload_mix(sum, fold(list));
        t[it % TREE_N] ^= sum;
        sum = workload_mix(sum, tree(t, 0, TREE_N));
    }
    return sum;
}
