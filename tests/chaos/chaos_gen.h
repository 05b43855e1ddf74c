/* chaos_gen.h - random guests for the whole-backend chaos test.
 *
 * One 64-bit seed gives one guest, always the same bytes: a raw image loaded at
 * GUEST_IMAGE_BASE (entry at its first byte). Layout (offsets from GUEST_IMAGE_BASE):
 *
 *   0x0000  prologue: optionally LIDT of the guest's own IDT, optionally the virtual timer
 *           (vector CHAOS_TIMER_VECTOR, random period) and STI, every GPR but RSP loaded
 *           with an "interesting" value, JMP to the body
 *   0x1000  own IDT (256 interrupt gates), used only when the prologue loads it
 *   0x2000  256 stubs: push a dummy error code where the CPU pushes none, push the vector
 *   0x3000  the common handler: counts, gives up after CHAOS_HANDLER_LIMIT events (exit
 *           CHAOS_EXIT_GAVE_UP), else resumes with IRETQ at the slot after the one that
 *           faulted; the timer's stub only IRETQs
 *   0x4000  data area (random bytes) that memory operands point into
 *   0x8000  body: `slots` slots of CHAOS_SLOT bytes, each one random instruction or a short
 *           sequence (register preload + instruction), padded with NOPs; on half the guests
 *           the first slot loads ymm0-ymm3
 *   ...     epilogue: exit port with CHAOS_EXIT_END
 *
 * Two kinds of body: "privileged" (biased to privileged and sensitive instructions, the
 * state a guest can poison for host code - RFLAGS.AC/NT/TF/DF, MXCSR, x87 control word, FS/GS
 * bases, segment registers, RSP -, memory operands pointed at the MMIO window, control
 * transfers into unmapped or zero-filled memory) and "random" (random bytes that decode,
 * plus plain garbage).
 */
#ifndef VMLAB_CHAOS_GEN_H
#define VMLAB_CHAOS_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAOS_SLOT 32
#define CHAOS_MAX_SLOTS 160
#define CHAOS_BODY_OFFSET 0x8000
#define CHAOS_IMAGE_MAX (CHAOS_BODY_OFFSET + CHAOS_MAX_SLOTS * CHAOS_SLOT + 64)
#define CHAOS_TIMER_VECTOR 0x40
#define CHAOS_HANDLER_LIMIT 48
#define CHAOS_EXIT_END 0        /* the body ran to its end */
#define CHAOS_EXIT_GAVE_UP 0x7E /* the guest's handler saw CHAOS_HANDLER_LIMIT events */

enum chaos_kind { CHAOS_PRIVILEGED, CHAOS_RANDOM };

struct chaos_guest {
    uint64_t seed;
    enum chaos_kind kind;
    bool own_idt;
    bool timer;
    unsigned slots;
    size_t size;
    uint8_t image[CHAOS_IMAGE_MAX];
};

/* Build the guest for this seed (deterministic). */
void chaos_generate(uint64_t seed, struct chaos_guest *g);

/* The per-guest seed of guest `index` of a run with master seed `seed`. */
uint64_t chaos_guest_seed(uint64_t seed, uint64_t index);

#endif
