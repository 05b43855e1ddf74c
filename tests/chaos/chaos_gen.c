/* chaos_gen.c - random guests for the whole-backend chaos test (see chaos_gen.h).
 *
 * This file: the fixed parts of a guest (own IDT, stubs, handler, prologue, epilogue) and the
 * loop over the body's slots; chaos_slots.c fills each slot.
 */
#include <string.h>

#include "chaos_emit.h"

uint64_t chaos_guest_seed(uint64_t seed, uint64_t index)
{
    /* splitmix64 finaliser over (seed, index): neighbouring indices give unrelated guests */
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (z ^ (z >> 31)) | 1;
}

/* ---- fixed parts: IDT, stubs, handler, prologue, epilogue ---- */

static bool vector_has_error_code(unsigned v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

static void put_gate(uint8_t *idt, unsigned vector, uint64_t handler)
{
    uint8_t *e = idt + 16 * vector;
    memset(e, 0, 16);
    e[0] = (uint8_t)handler;
    e[1] = (uint8_t)(handler >> 8);
    e[2] = GUEST_SEL_CODE64;
    e[5] = 0x8E; /* present, DPL 0, 64-bit interrupt gate (SDM vol. 3A 6.14.1) */
    e[6] = (uint8_t)(handler >> 16);
    e[7] = (uint8_t)(handler >> 24);
}

static void emit_handlers(struct gen *g, uint64_t epilogue)
{
    struct chaos_guest *c = g->guest;
    uint64_t common = IMG(HANDLER_OFFSET);
    for (unsigned v = 0; v < 256; v++) {
        uint64_t stub = IMG(STUBS_OFFSET) + 16 * v;
        put_gate(c->image + IDT_OFFSET, v, stub);
        g->at = STUBS_OFFSET + 16 * v;
        if (v == CHAOS_TIMER_VECTOR) {
            BYTES(g, "\x48\xCF"); /* iretq: the tick interrupted the instruction at RIP */
            continue;
        }
        if (!vector_has_error_code(v))
            BYTES(g, "\x6A\x00");
        b1(g, 0x68);
        le(g, v, 4);
        b1(g, 0xE9);
        le(g, common - (IMG(g->at) + 4), 4);
    }
    /* frame: [rsp] vector, +8 error, +16 RIP, +24 CS, +32 RFLAGS, +40 RSP, +48 SS */
    uint64_t counter = IMG(COUNTER_OFFSET);
    g->at = HANDLER_OFFSET;
    BYTES(g, "\x50");             /* push rax */
    BYTES(g, "\x48\xFF\x04\x25"); /* incq counter */
    le(g, counter, 4);
    BYTES(g, "\x48\x83\x3C\x25"); /* cmpq $LIMIT, counter */
    le(g, counter, 4);
    b1(g, CHAOS_HANDLER_LIMIT);
    BYTES(g, "\x73\x00"); /* jae give_up */
    size_t to_give_up = g->at;
    BYTES(g, "\x48\x8B\x44\x24\x18"); /* mov 24(%rsp), %rax: the interrupted RIP */
    BYTES(g, "\x48\x2D");             /* sub $body, %rax */
    le(g, IMG(CHAOS_BODY_OFFSET), 4);
    BYTES(g, "\x48\x3D"); /* cmp $body_size, %rax */
    le(g, (uint64_t)c->slots * CHAOS_SLOT, 4);
    BYTES(g, "\x73\x00"); /* jae to_epilogue (outside the body, unsigned) */
    size_t to_epilogue = g->at;
    BYTES(g, "\x48\x83\xE0\xE0"); /* and $-32, %rax */
    BYTES(g, "\x48\x05");         /* add $(body + 32), %rax: the next slot */
    le(g, IMG(CHAOS_BODY_OFFSET) + CHAOS_SLOT, 4);
    BYTES(g, "\xEB\x00"); /* jmp store */
    size_t to_store = g->at;
    c->image[to_epilogue - 1] = (uint8_t)(g->at - to_epilogue);
    BYTES(g, "\x48\xC7\xC0"); /* to_epilogue: mov $epilogue, %rax */
    le(g, epilogue, 4);
    c->image[to_store - 1] = (uint8_t)(g->at - to_store);
    BYTES(g, "\x48\x89\x44\x24\x18"); /* store: mov %rax, 24(%rsp) */
    BYTES(g, "\x58");                 /* pop rax */
    BYTES(g, "\x48\x83\xC4\x10");     /* add $16, %rsp */
    BYTES(g, "\x48\xCF");             /* iretq */
    c->image[to_give_up - 1] = (uint8_t)(g->at - to_give_up);
    b1(g, 0xB0); /* give_up: mov $CHAOS_EXIT_GAVE_UP, %al; out %al, $0xf4; hlt; jmp . */
    b1(g, CHAOS_EXIT_GAVE_UP);
    BYTES(g, "\xE6\xF4\xF4\xEB\xFE");
    /* IDTR image */
    uint8_t *idtr = c->image + IDTR_OFFSET;
    idtr[0] = 0xFF;
    idtr[1] = 0x0F; /* limit 4095 */
    uint64_t base = IMG(IDT_OFFSET);
    memcpy(idtr + 2, &base, 8);
}

static void emit_prologue(struct gen *g)
{
    struct chaos_guest *c = g->guest;
    g->at = 0;
    if (c->own_idt) {
        BYTES(g, "\x0F\x01\x1C\x25"); /* lidt abs32 */
        le(g, IMG(IDTR_OFFSET), 4);
    }
    if (c->timer) {
        mov_imm32(g, 0, c->own_idt ? CHAOS_TIMER_VECTOR : (uint32_t)(32 + below(g, 200)));
        mov_imm32(g, 2, PORT_TIMER_VECTOR);
        BYTES(g, "\xEF");
        mov_imm32(g, 0, 20 + below(g, 2000)); /* period in microseconds */
        mov_imm32(g, 2, PORT_TIMER_PERIOD);
        BYTES(g, "\xEF");
        if (chance(g, 70))
            BYTES(g, "\xFB"); /* sti */
    }
    for (unsigned r = 0; r < 16; r++)
        if (r != 4)
            mov_imm64(g, r, chaos_pick_value(g));
    b1(g, 0xE9); /* jmp body */
    le(g, IMG(CHAOS_BODY_OFFSET) - (IMG(g->at) + 4), 4);
}

void chaos_generate(uint64_t seed, struct chaos_guest *c)
{
    memset(c, 0, sizeof(*c));
    struct gen g = {.guest = c, .rng = seed ? seed : 1};
    c->seed = seed;
    c->kind = chance(&g, 65) ? CHAOS_PRIVILEGED : CHAOS_RANDOM;
    c->own_idt = chance(&g, 60);
    c->timer = chance(&g, 40);
    c->slots = 8 + below(&g, CHAOS_MAX_SLOTS - 8);
    uint64_t epilogue = IMG(CHAOS_BODY_OFFSET) + (uint64_t)c->slots * CHAOS_SLOT;

    for (size_t i = 0; i < DATA_SIZE; i += 8) {
        uint64_t v = rnd(&g);
        memcpy(c->image + DATA_OFFSET + i, &v, 8);
    }
    emit_handlers(&g, epilogue);
    emit_prologue(&g);

    ZydisDecoder dec;
    ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    for (unsigned s = 0; s < c->slots; s++) {
        size_t start = CHAOS_BODY_OFFSET + (size_t)s * CHAOS_SLOT;
        g.next_slot = IMG(start + CHAOS_SLOT);
        if (s == 0 && chance(&g, 50)) { /* ymm0-ymm3 from the data area (AVX hosts) */
            memset(c->image + start, 0x90, CHAOS_SLOT);
            g.at = start;
            mov_imm64(&g, 0, IMG(DATA_OFFSET));
            for (unsigned i = 0; i < 4; i++) { /* vmovdqu 32*i(%rax), %ymmi */
                BYTES(&g, "\xC5\xFE\x6F");
                b1(&g, (uint8_t)(0x40 | i << 3));
                b1(&g, (uint8_t)(32 * i));
            }
            continue;
        }
        do { /* a draw longer than a slot is drawn again */
            memset(c->image + start, 0x90, CHAOS_SLOT); /* NOP padding */
            g.at = start;
            if (c->kind == CHAOS_RANDOM || chance(&g, 15))
                chaos_slot_random(&g, &dec);
            else
                chaos_slot_privileged(&g);
        } while (g.at > start + CHAOS_SLOT);
    }
    g.at = (size_t)(epilogue - GUEST_IMAGE_BASE);
    b1(&g, 0xB0); /* mov $CHAOS_EXIT_END, %al; out %al, $0xf4 */
    b1(&g, CHAOS_EXIT_END);
    BYTES(&g, "\xE6\xF4\xF4\xEB\xFE");
    c->size = g.at;
}
