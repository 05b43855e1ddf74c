/* indirect.c - workload "indirect calls": calls through a table of 64 function pointers and
 * through C++-style vtables.
 *
 * Per iteration:
 *   - 256 calls through `handlers[]` (64 distinct functions), the index a function of the
 *     loop counter and of the previous result (a dispatcher or callback table: the target
 *     changes at almost every call, partly predictable from history);
 *   - a pass over 128 heterogeneous "objects" (8 classes, shuffled once): for each, two virtual
 *     calls through the object's vtable pointer (load the vtable, load the method, call).
 * Function pointers and vtables are built at run time on the stack (the blob has no
 * relocations), with RIP-relative LEAs as position-independent code does.
 */
#include "workload_blob.h"

typedef uint64_t handler_fn(uint64_t x, uint64_t k);

#define H(n, MUL, ROT)                                                                             \
    WORKLOAD_NOINLINE static uint64_t handler_##n(uint64_t x, uint64_t k)                          \
    {                                                                                              \
        x = (x ^ k) * MUL##ull;                                                                    \
        return (x << ROT | x >> (64 - ROT)) + n;                                                   \
    }
#define H8(b)                                                                                      \
    H(b##0, 0x9E3779B97F4A7C15, 5)                                                                 \
    H(b##1, 0xC2B2AE3D27D4EB4F, 9)                                                                 \
    H(b##2, 0x165667B19E3779F9, 13)                                                                \
    H(b##3, 0xD6E8FEB86659FD93, 17)                                                                \
    H(b##4, 0xFF51AFD7ED558CCD, 21)                                                                \
    H(b##5, 0xC4CEB9FE1A85EC53, 25)                                                                \
    H(b##6, 0x87C37B91114253D5, 29)                                                                \
    H(b##7, 0x4CF5AD432745937F, 33)
H8(1)
H8(2)
H8(3)
H8(4)
H8(5)
H8(6)
H8(7)
H8(8)

struct object;
struct vtable {
    uint64_t (*area)(const struct object *o);
    void (*grow)(struct object *o, uint64_t by);
};
struct object {
    const struct vtable *vt;
    uint64_t a, b;
};

#define CLASS(n, EXPR, GROW)                                                                       \
    WORKLOAD_NOINLINE static uint64_t area_##n(const struct object *o)                             \
    {                                                                                              \
        return EXPR;                                                                               \
    }                                                                                              \
    WORKLOAD_NOINLINE static void grow_##n(struct object *o, uint64_t by)                          \
    {                                                                                              \
        GROW;                                                                                      \
    }
CLASS(0, o->a * o->b, o->a += by & 7)
CLASS(1, o->a * o->a * 3, o->a ^= by)
CLASS(2, (o->a + o->b) * 2, o->b += by >> 3)
CLASS(3, o->a * o->b / 2 + 1, (o->a += 1, o->b ^= by))
CLASS(4, o->a << (o->b & 15), o->b = (o->b + by) & 31)
CLASS(5, o->a ^ o->b ^ 0x5555, o->a = o->a * 5 + by)
CLASS(6, (o->a | 1) * (o->b | 1), o->a -= by & 3)
CLASS(7, o->a + o->b + 42, (o->a = o->b, o->b = by))

#define NOBJ 128

struct world {
    handler_fn *handlers[64];
    struct vtable vtables[8];
    struct object objects[NOBJ];
};

/* Each pointer is stored by its own instruction (LEA RIP-relative + store): a constant array of
 * pointers would be a table needing load-time relocations. */
#define SET8(b)                                                                                    \
    do {                                                                                           \
        handler_fn **p = &w->handlers[8 * (b - 1)];                                                \
        p[0] = handler_##b##0, p[1] = handler_##b##1, p[2] = handler_##b##2;                       \
        p[3] = handler_##b##3, p[4] = handler_##b##4, p[5] = handler_##b##5;                       \
        p[6] = handler_##b##6, p[7] = handler_##b##7;                                              \
    } while (0)
#define SETVT(n) (w->vtables[n].area = area_##n, w->vtables[n].grow = grow_##n)

WORKLOAD_NOINLINE static void build(struct world *w)
{
    SET8(1);
    SET8(2);
    SET8(3);
    SET8(4);
    SET8(5);
    SET8(6);
    SET8(7);
    SET8(8);
    SETVT(0), SETVT(1), SETVT(2), SETVT(3), SETVT(4), SETVT(5), SETVT(6), SETVT(7);
    uint64_t s = 0x853C49E6748FEA9Bull;
    for (int i = 0; i < NOBJ; i++) {
        uint64_t r = workload_xorshift(&s);
        w->objects[i].vt = &w->vtables[r & 7];
        w->objects[i].a = (r >> 8) & 0xFFFF;
        w->objects[i].b = (r >> 24) & 0xFFFF;
    }
}

WORKLOAD_ENTRY uint64_t workload_entry(uint64_t iterations)
{
    struct world world, *w = &world;
    build(w);
    uint64_t sum = 0, x = 1;
    for (uint64_t it = 0; it < iterations; it++) {
        for (uint64_t k = 0; k < 256; k++)
            x = w->handlers[(k * 7 + (x >> 60)) & 63](x, k);
        for (int i = 0; i < NOBJ; i++) {
            struct object *o = &w->objects[i];
            uint64_t area = o->vt->area(o);
            o->vt->grow(o, area + it);
            sum += area;
        }
        sum = workload_mix(sum, x);
    }
    return sum;
}
