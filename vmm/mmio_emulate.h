/* mmio_emulate.h - turn a faulting memory access to non-RAM guest space into an MMIO exit.
 *
 * The in-process backends see an MMIO access as a page fault (the guest space outside RAM is
 * PROT_NONE). Like KVM's instruction emulator for MMIO, only the plain data-movement forms are
 * supported: MOV r/m,r ; MOV r,r/m ; MOV r/m,imm ; MOVZX/MOVSX r,r/m. Anything else touching
 * MMIO is reported as an internal error naming the instruction, never guessed.
 */
#ifndef VMLAB_MMIO_EMULATE_H
#define VMLAB_MMIO_EMULATE_H

#include <stdbool.h>
#include <stdint.h>

#include "../emu/vcpu_state.h"
#include "../emu/x86_decode.h"

struct mmio_access {
    uint64_t gpa;
    uint8_t len;
    bool is_write;
    uint8_t data[8]; /* write data */
};

/* 0, or -EOPNOTSUPP if the instruction is not a supported MMIO form. */
int mmio_decode(const struct x86_decoded_insn *insn, const struct vcpu_state *state, uint64_t gpa,
                struct mmio_access *out);
/* Finish a read: write data to the destination register; then advance rip. For a write just
 * advance rip. */
void mmio_complete(const struct x86_decoded_insn *insn, const struct mmio_access *access,
                   struct vcpu_state *state, const uint8_t *read_data);

#endif
