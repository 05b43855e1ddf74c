/* trace_record.h - filling trace ring records the same way in every backend.
 *
 * Async-signal-safe (trap_emulate records from its SIGSEGV handler): fixed-size records, no
 * allocation; a full ring counts a drop (see vcpu_stats.h). A NULL ring records nothing.
 */
#ifndef VMLAB_TRACE_RECORD_H
#define VMLAB_TRACE_RECORD_H

#include <stdint.h>

#include "../emu/emu.h"
#include "vcpu_stats.h"

/* An instruction emulated on the virtual CPU; new_rip is RIP after it. */
void trace_record_emulated(struct trace_ring *ring, const struct x86_decoded_insn *insn,
                           const struct emu_result *res, uint64_t new_rip);

/* An exception delivered to the guest IDT, raised at guest RIP `rip`. */
void trace_record_exception(struct trace_ring *ring, uint64_t rip, uint8_t vector, uint32_t error);

#endif
