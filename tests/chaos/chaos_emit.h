/* chaos_emit.h - the generator's random source and x86 byte emitter, shared by chaos_gen.c
 * (the fixed parts of a guest) and chaos_slots.c (the random body). */
#ifndef VMLAB_CHAOS_EMIT_H
#define VMLAB_CHAOS_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chaos_gen.h"
#include <Zydis/Zydis.h>

#include "vmm/guest_layout.h"

#define IDT_OFFSET 0x1000
#define STUBS_OFFSET 0x2000
#define HANDLER_OFFSET 0x3000
#define IDTR_OFFSET 0x3800
#define COUNTER_OFFSET 0x3810
#define DATA_OFFSET 0x4000
#define DATA_SIZE 0x4000

#define IMG(off) (GUEST_IMAGE_BASE + (off))

struct gen {
    struct chaos_guest *guest;
    uint64_t rng;
    size_t at;          /* emit position in guest->image */
    uint64_t next_slot; /* guest address of the slot after the current one */
};

static inline uint64_t rnd(struct gen *g)
{
    /* xorshift64* (Vigna): fast, full period, good enough for test generation */
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return g->rng * 0x2545F4914F6CDD1DULL;
}

static inline unsigned below(struct gen *g, unsigned n)
{
    return (unsigned)(rnd(g) % n);
}

static inline bool chance(struct gen *g, unsigned percent)
{
    return below(g, 100) < percent;
}

/* ---- emitter ---- */

static inline void b1(struct gen *g, uint8_t v)
{
    if (g->at < sizeof(g->guest->image))
        g->guest->image[g->at++] = v;
}

static inline void bn(struct gen *g, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b1(g, (uint8_t)s[i]);
}
#define BYTES(g, lit) bn((g), "" lit, sizeof(lit) - 1) /* string literals only */

static inline void le(struct gen *g, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        b1(g, (uint8_t)(v >> (8 * i)));
}

static inline void rex(struct gen *g, bool w, unsigned r, unsigned b)
{
    uint8_t v = (uint8_t)(0x40 | (w ? 8 : 0) | ((r >> 3) & 1) << 2 | ((b >> 3) & 1));
    if (v != 0x40)
        b1(g, v);
}

static inline void mov_imm64(struct gen *g, unsigned reg, uint64_t v)
{
    rex(g, true, 0, reg);
    b1(g, (uint8_t)(0xB8 + (reg & 7)));
    le(g, v, 8);
}

static inline void mov_imm32(struct gen *g, unsigned reg, uint32_t v) /* zero-extends */
{
    rex(g, false, 0, reg);
    b1(g, (uint8_t)(0xB8 + (reg & 7)));
    le(g, v, 4);
}

/* [legacy] [REX] opcode ModRM(mod=01, reg, rm=base) [SIB] disp8 */
static inline void insn_mem(struct gen *g, uint8_t legacy, bool w, const char *op, size_t oplen,
                            unsigned reg, unsigned base, int8_t disp)
{
    if (legacy)
        b1(g, legacy);
    rex(g, w, reg, base);
    bn(g, op, oplen);
    b1(g, (uint8_t)(0x40 | (reg & 7) << 3 | (base & 7)));
    if ((base & 7) == 4)
        b1(g, 0x24); /* SIB: base only */
    b1(g, (uint8_t)disp);
}

/* [legacy] [REX] opcode ModRM(mod=11, reg, rm) */
static inline void insn_reg(struct gen *g, uint8_t legacy, bool w, const char *op, size_t oplen,
                            unsigned reg, unsigned rm)
{
    if (legacy)
        b1(g, legacy);
    rex(g, w, reg, rm);
    bn(g, op, oplen);
    b1(g, (uint8_t)(0xC0 | (reg & 7) << 3 | (rm & 7)));
}

/* chaos_slots.c: one slot of the body; an "interesting" register value */
uint64_t chaos_pick_value(struct gen *g);
void chaos_slot_privileged(struct gen *g);
void chaos_slot_random(struct gen *g, const ZydisDecoder *dec);

#endif
