/* emu_deliver.c - interrupt and exception delivery through the guest's IDT, in 64-bit mode.
 *
 * What the CPU does (Intel SDM vol. 3A 6.12-6.14): read the 16-byte gate for the vector,
 * check it, switch to the IST stack if the gate names one, align RSP down to 16, push SS, RSP,
 * RFLAGS, CS, RIP and (for some exceptions) an error code, clear TF/NT/RF (and IF for an
 * interrupt gate), load CS:RIP from the gate. A fault while doing so is a second exception;
 * table 6-5 says when the pair becomes a double fault, and a fault while delivering #DF shuts
 * the processor down (triple fault).
 */
#include <string.h>

#include "emu_internal.h"
#include "mmu/page_walk.h"

enum fault_class { BENIGN, CONTRIBUTORY, PAGE_FAULT, DOUBLE_FAULT };

static enum fault_class fault_class_of(unsigned vector)
{
    switch (vector) {
    case EMU_DE:
    case EMU_TS:
    case EMU_NP:
    case EMU_SS:
    case EMU_GP:
        return CONTRIBUTORY;
    case EMU_PF:
        return PAGE_FAULT;
    case EMU_DF:
        return DOUBLE_FAULT;
    default:
        return BENIGN;
    }
}

/* One delivery attempt; false with (vector, error, cr2) of the fault it raised. */
static bool deliver_once(struct emu_ctx *ctx, enum emu_event_kind kind, uint8_t vector,
                         bool has_error, uint32_t error, unsigned insn_length,
                         struct emu_result *fault)
{
    struct vcpu_state *s = ctx->state;
    uint32_t ext = kind == EMU_EVENT_SOFTWARE ? 0 : 1;      /* EXT bit of the error code */
    uint32_t idt_error = ((uint32_t)vector << 3) | 2 | ext; /* IDT bit set */
    uint64_t gate[2];
    if ((uint64_t)vector * 16 + 15 > s->idtr.limit) {
        emu_raise(fault, EMU_GP, true, idt_error);
        return false;
    }
    /* The IDT, GDT, TSS and the frame are implicit supervisor accesses by linear address: a
     * page fault on any of them is a #PF during delivery (SDM vol. 3A 6.15, table 6-5). */
    if (!emu_read_as(ctx, s->idtr.base + (uint64_t)vector * 16, gate, 16, MMU_IMPLICIT, fault))
        return false;
    unsigned type = DESC_TYPE(gate[0]);
    if (type != 0xE && type != 0xF) {
        emu_raise(fault, EMU_GP, true, idt_error);
        return false;
    }
    if (!DESC_P(gate[0])) {
        emu_raise(fault, EMU_NP, true, idt_error);
        return false;
    }
    uint16_t selector = (uint16_t)(gate[0] >> 16);
    uint64_t target =
        (gate[0] & 0xFFFF) | (((gate[0] >> 48) & 0xFFFF) << 16) | ((gate[1] & 0xFFFFFFFF) << 32);
    /* A target that is not canonical is #GP(EXT) (SDM vol. 3A 6.14.1, vol. 2A INT n): never
     * loaded into RIP, where trap_emulate's IRETQ into the guest would fault in host code. */
    if (!emu_canonical(target)) {
        emu_raise(fault, EMU_GP, true, ext);
        return false;
    }
    uint64_t lo, hi;
    if (!emu_descriptor(ctx, selector, &lo, &hi) || !DESC_CODE(lo) || !DESC_L(lo)) {
        emu_raise(fault, EMU_GP, true, (selector & ~3u) | ext);
        return false;
    }
    if (!DESC_P(lo)) {
        emu_raise(fault, EMU_NP, true, (selector & ~3u) | ext);
        return false;
    }
    uint64_t rsp = s->gpr[X86_RSP];
    unsigned ist = (unsigned)((gate[0] >> 32) & 7);
    if (ist) { /* IST pointers at TSS offset 0x24 + 8 * (n - 1) (SDM vol. 3A 8.7) */
        if (!emu_read_as(ctx, s->tr.base + 0x24 + 8 * (ist - 1), &rsp, 8, MMU_IMPLICIT, fault))
            return false;
    }
    rsp &= ~0xFULL;
    uint64_t frame[6];
    unsigned n = 0;
    if (has_error)
        frame[n++] = error;
    frame[n++] = s->rip + insn_length; /* INT n: the next instruction */
    frame[n++] = s->cs.selector;
    frame[n++] = s->rflags;
    frame[n++] = s->gpr[X86_RSP];
    frame[n++] = s->ss.selector;
    rsp -= 8ULL * n;
    if (!emu_write_as(ctx, rsp, frame, 8 * n, MMU_IMPLICIT | EMU_ACCESS_STACK, fault))
        return false;
    s->gpr[X86_RSP] = rsp;
    emu_segment_load(&s->cs, selector, lo, hi);
    s->rip = target;
    s->rflags &= ~(uint64_t)(X86_EFLAGS_TF | X86_EFLAGS_NT | X86_EFLAGS_RF | X86_EFLAGS_VM);
    if (type == 0xE)
        s->rflags &= ~(uint64_t)X86_EFLAGS_IF;
    s->interrupt_shadow = false;
    return true;
}

/* insn_length: of the INT n that raises a software interrupt, 0 for any other event. */
static enum emu_status deliver_event(struct emu_ctx *ctx, enum emu_event_kind kind, uint8_t vector,
                                     bool has_error_code, uint32_t error_code, unsigned insn_length,
                                     struct emu_result *out)
{
    struct emu_result fault;
    for (int attempt = 0; attempt < 3; attempt++) {
        memset(&fault, 0, sizeof(fault));
        if (deliver_once(ctx, kind, vector, has_error_code, error_code, insn_length, &fault)) {
            out->field = "delivered vector";
            out->old_value = vector;
            out->new_value = ctx->state->rip;
            return EMU_OK;
        }
        enum fault_class first = fault_class_of(vector);
        enum fault_class second = fault_class_of(fault.vector);
        if (fault.vector == EMU_PF)
            ctx->state->cr2 = fault.cr2;
        if (first == DOUBLE_FAULT)
            return EMU_SHUTDOWN;
        bool to_double = (first == CONTRIBUTORY && second == CONTRIBUTORY) ||
                         (first == PAGE_FAULT && second != BENIGN);
        kind = EMU_EVENT_EXCEPTION;
        insn_length = 0; /* a fault of the INT n itself: RIP stays at it */
        if (to_double) {
            vector = EMU_DF;
            has_error_code = true;
            error_code = 0;
        } else {
            vector = fault.vector;
            has_error_code = fault.has_error_code;
            error_code = fault.error_code;
        }
    }
    return EMU_SHUTDOWN;
}

enum emu_status emu_deliver_event(struct emu_ctx *ctx, enum emu_event_kind kind, uint8_t vector,
                                  bool has_error_code, uint32_t error_code, struct emu_result *out)
{
    return deliver_event(ctx, kind, vector, has_error_code, error_code, 0, out);
}

enum emu_status emu_deliver_software_interrupt(struct emu_ctx *ctx, uint8_t vector, unsigned length,
                                               struct emu_result *out)
{
    return deliver_event(ctx, EMU_EVENT_SOFTWARE, vector, false, 0, length, out);
}

bool emu_interrupts_enabled(const struct vcpu_state *state)
{
    return (state->rflags & X86_EFLAGS_IF) && !state->interrupt_shadow;
}
