/* emu_privileged.h - the classic privileged family: CLI, STI, HLT, IN, OUT, MOV CRn.
 *
 * These are the instructions a minimal kernel cannot do without (turn interrupts off and on,
 * idle, talk to a device, switch address spaces) and the ones that trap cleanly at CPL 3:
 * each raises #GP (Intel SDM vol. 2, "64-Bit Mode Exceptions" of each), so trap-and-emulate
 * sees every one of them. They are the family the trap-and-emulate lab
 * (labs/01-trap-emulate) asks students to write: a lab build (CMake option
 * VMLAB_STUDENT_DIR, see labs/README.md) compiles the student's emu_privileged.c in place of
 * this tree's one, which is the lab's reference solution. Hence the narrow interface: the
 * file defines exactly the seven functions below and uses only emu_internal.h (the state,
 * emu_advance, emu_note, emu_set_flag, emu_raise, emu_reg_read/emu_reg_write).
 *
 * Each function emulates the decoded instruction at ctx->state->rip at the virtual CPU's
 * CPL 0 and says in `out` what the backend must do next (emu.h, enum emu_status).
 */
#ifndef VMLAB_EMU_PRIVILEGED_H
#define VMLAB_EMU_PRIVILEGED_H

#include "emu_internal.h"

/* CLI / STI: the virtual IF (RFLAGS.IF in struct vcpu_state); STI sets the interrupt shadow
 * when IF was clear and reports interrupts_enabled_now. */
void emu_exec_cli(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out);
void emu_exec_sti(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out);
/* HLT: RIP past it, EMU_EXIT_HLT (the VMM waits for an interrupt or ends the run). */
void emu_exec_hlt(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out);
/* IN / OUT with an immediate or DX port (not the string forms INS/OUTS): EMU_EXIT_IO with
 * out->io filled. OUT is complete at once (RIP past it); IN completes in emu_privileged_in_done
 * once the VMM has the data. */
void emu_exec_in(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out);
void emu_exec_out(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out);
void emu_privileged_in_done(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                            const struct emu_io *io, const uint8_t *data, struct emu_result *out);
/* MOV to/from CR0, CR2, CR3, CR4, CR8 with the #GP(0) checks of SDM vol. 2B. */
void emu_exec_mov_cr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                     struct emu_result *out);

#endif
