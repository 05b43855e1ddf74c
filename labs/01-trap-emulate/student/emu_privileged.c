/* emu_privileged.c - CLI, STI, HLT, IN, OUT and MOV CRn on the virtual CPU (emu_privileged.h).
 *
 * Lab 1 (labs/01-trap-emulate/HANDOUT.md): you write the emulation of the classic privileged
 * instructions. When the guest executes one of them at CPL 3 the CPU raises #GP, the host
 * kernel delivers SIGSEGV, trap_emulate's handler decodes the instruction with Zydis and
 * calls emu_execute(), which calls the function below for its class. dbt calls the same
 * functions from its callouts. Each function:
 *
 *   - reads and changes the virtual CPU in ctx->state (struct vcpu_state, emu/vcpu_state.h):
 *     the guest's registers, its *virtual* RFLAGS (IF lives there), CR0-CR8 ...
 *   - says what happens next in out->status: EMU_OK (go on, RIP already past the
 *     instruction: emu_advance() does both), EMU_EXIT_IO / EMU_EXIT_HLT (the VMM must act),
 *     or an exception for the guest (emu_raise(out, vector, has_error_code, error_code));
 *   - may describe what changed for `vmlab trace` with emu_note(out, "IF_virt", old, new).
 *
 * Helpers you may use (emu/emu_internal.h): emu_advance, emu_note, emu_set_flag, emu_raise,
 * emu_reg_read / emu_reg_write (a register named by Zydis, with the x86-64 width rules),
 * EMU_GP / EMU_UD, EFER_LMA, and the X86_EFLAGS_* / X86_CR0_* / X86_CR4_* constants of
 * <asm/processor-flags.h>. The decoded instruction: insn->length, insn->operands[i] (Zydis:
 * .type, .reg.value, .imm.value.u, .size in bits), insn->info.mnemonic.
 *
 * Until a function is written it leaves out->status at EMU_UNHANDLED, and the guest gets the
 * #GP (trap_emulate) or #UD (dbt) a CPU without that instruction would raise.
 */
#include <string.h>

#include "emu_privileged.h"

/* ---- interrupt flag and halt ------------------------------------------------------------ */

void emu_exec_cli(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    /* TODO (step 3): clear the virtual IF (X86_EFLAGS_IF in ctx->state->rflags), note the
     * change as "IF_virt", complete the instruction. */
    (void)ctx;
    (void)insn;
    (void)out;
}

void emu_exec_sti(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    /* TODO (step 3): set the virtual IF. If it was clear, the instruction after STI runs
     * before any interrupt (the STI interrupt shadow, SDM vol. 2B STI): set
     * ctx->state->interrupt_shadow and out->interrupts_enabled_now. */
    (void)ctx;
    (void)insn;
    (void)out;
}

void emu_exec_hlt(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    /* TODO (step 4): HLT is the VMM's business (wait for the next interrupt, or end the run
     * if none can come): move RIP past it and return EMU_EXIT_HLT. */
    (void)ctx;
    (void)insn;
    (void)out;
}

/* ---- port I/O (register forms) --------------------------------------------------------- */

void emu_exec_out(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    /* TODO (step 1): OUT imm8, AL/AX/EAX or OUT DX, AL/AX/EAX (SDM vol. 2B OUT). Fill out->io:
     * direction 1 (out), port (operand 0: an immediate, or DX), size in bytes (operand 1's
     * size / 8), count 1, not a string; copy the low `size` bytes of RAX into out->io.data;
     * RIP past the instruction; status EMU_EXIT_IO. The VMM then writes the data to the
     * device (port 0xE9: the console, port 0xF4: the exit port ...). */
    (void)ctx;
    (void)insn;
    (void)out;
}

void emu_exec_in(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    /* TODO (step 2): IN AL/AX/EAX, imm8 or IN AL/AX/EAX, DX (SDM vol. 2A IN): as OUT, but
     * direction 0, the port is operand 1, the size operand 0's, and RIP stays: the VMM reads
     * the device and then calls emu_privileged_in_done() with the data. */
    (void)ctx;
    (void)insn;
    (void)out;
}

void emu_privileged_in_done(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                            const struct emu_io *io, const uint8_t *data, struct emu_result *out)
{
    /* TODO (step 2): write the io->size bytes of data into the instruction's destination
     * register (operand 0) with emu_reg_write, which applies the x86-64 rules (an 8/16-bit
     * write merges into RAX, a 32-bit one zero-extends), and complete the instruction. */
    (void)ctx;
    (void)insn;
    (void)io;
    (void)data;
    (void)out;
}

/* ---- control registers ------------------------------------------------------------------ */

void emu_exec_mov_cr(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                     struct emu_result *out)
{
    /* TODO (step 5): MOV CRn, r64 and MOV r64, CRn for CR0, CR2, CR3, CR4, CR8 (SDM vol. 2B
     * "MOV-Move to/from Control Registers"). Operand 0 is the destination: find which operand
     * is the control register (ZydisRegisterGetClass(...) == ZYDIS_REGCLASS_CONTROL). Any
     * other CRn is #UD. Reading copies the virtual register into the GPR. Writing checks the
     * value first and raises #GP(0) (emu_raise(out, EMU_GP, true, 0)) without changing
     * anything if:
     *   CR0: bits 63:32 set; PG set with PE clear; NW set with CD clear; PG cleared while in
     *        long mode (EFER.LMA). CR0.ET always reads 1 (hardwired).
     *   CR3: bits 63:52 set.
     *   CR4: a bit the virtual CPU does not implement (keep VME PVI TSD DE PSE PAE MCE PGE
     *        PCE OSFXSR OSXMMEXCPT UMIP FSGSBASE PCIDE OSXSAVE SMEP SMAP); PAE cleared in
     *        long mode.
     *   CR8: a value above 15. */
    (void)ctx;
    (void)insn;
    (void)out;
}
