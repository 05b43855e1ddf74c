/* trace_record.c - see trace_record.h. */
#include "trace_record.h"

#include <string.h>

void trace_record_emulated(struct trace_ring *ring, const struct x86_decoded_insn *insn,
                           const struct emu_result *res, uint64_t new_rip)
{
    struct trace_event *ev = ring ? trace_ring_push(ring) : NULL;
    if (!ev)
        return;
    memset(ev, 0, sizeof(*ev));
    ev->kind = TRACE_EMULATED;
    ev->rip = insn->rip;
    memcpy(ev->bytes, insn->bytes, insn->length);
    ev->length = insn->length;
    ev->emu_class = (uint16_t)res->cls;
    ev->field = res->field;
    ev->old_value = res->old_value;
    ev->new_value = res->new_value;
    int64_t delta = (int64_t)(new_rip - insn->rip);
    ev->rip_delta = delta >= 0 && delta <= 15 ? (int32_t)delta : -1;
    ev->aux = new_rip;
}

void trace_record_exception(struct trace_ring *ring, uint64_t rip, uint8_t vector, uint32_t error)
{
    struct trace_event *ev = ring ? trace_ring_push(ring) : NULL;
    if (!ev)
        return;
    memset(ev, 0, sizeof(*ev));
    ev->kind = TRACE_EXCEPTION;
    ev->rip = rip;
    ev->vector = vector;
    ev->aux = error;
}
