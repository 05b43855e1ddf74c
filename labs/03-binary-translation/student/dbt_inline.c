/* dbt_inline.c - CLI, STI, PUSHF and POPF translated into a few host instructions on the
 * virtual flags, without a call and without a kernel round trip.
 *
 * Lab 3 (labs/03-binary-translation/HANDOUT.md): you write these four translations. Until a
 * function emits its sequence and returns true, it returns false and the translator writes a
 * callout instead (dbt_translate.c): correct, but every execution then saves the guest's
 * registers, switches stacks and runs the emulation core in C (~100 ns, not ~1 ns).
 *
 * What translated code can use (dbt_emit.h, dbt.h):
 *   - the context page, reachable RIP-relative from translated code: ctx.vif (the virtual IF:
 *     0 or 0x200 = DBT_IF), ctx.vflags (the guest's IOPL, TF, NT, AC and ID: DBT_VFLAGS, the
 *     flags that never become native - dbt.h says why), ctx.popf_tf (non-zero after a POPF
 *     that set TF), two scratch slots DBT_CTX_SAVE_RAX / DBT_CTX_SAVE_RCX, and
 *     ctx.want_window (non-zero while the VMM waits for the guest to enable interrupts);
 *   - emit_ctx_store_imm(e, DBT_CTX_X, imm32)   mov qword [ctx.X], imm32 (sign-extended)
 *     emit_ctx_move(e, RAX or RCX, DBT_CTX_X, store)   mov [ctx.X], reg / mov reg, [ctx.X]
 *     EMIT(e, bytes...), emit_u32(e, v)         any other instruction, as machine code
 *   - emit_leave_if(e, next, via, field) below (given).
 * Everything else is the guest's: its RAX..R15 are in the real registers, its arithmetic flags
 * (CF PF AF ZF SF OF) and DF are the real RFLAGS, its stack is the real RSP. A sequence may
 * change none of them except as the instruction itself does: CLI and STI change no flag but
 * IF (SDM vol. 2A CLI, "Flags Affected"), so no ADD/AND/OR/TEST/CMP/INC here - only MOV, LEA,
 * NOT, PUSH/POP, SAHF/LAHF-style moves, and jumps that read flags or RCX.
 * Check your bytes with `vmlab trace --backend dbt --only block GUEST`, which disassembles
 * each translated block next to the guest code.
 */
#include "dbt_inline.h"

#include "dbt_emit.h"

/* Given. Leave translated code right after the instruction (guest RIP `next`) when the
 * context field `field` is non-zero (DBT_CTX_WANT_WINDOW: the VMM waits for an interrupt
 * window and can deliver the interrupt now; DBT_CTX_POPF_TF: a POPF set TF, and the
 * dispatcher single-steps from the next instruction on); else fall through. `via` is the exit
 * stub: e->c->exit_shadow after STI (the next instruction runs first, in the interrupt
 * shadow: SDM vol. 3A 6.8.3), e->c->exit_continue after POPF. Uses RCX through its scratch
 * slot; changes no flag (JRCXZ reads RCX, not RFLAGS). */
static void emit_leave_if(struct emitter *e, uint64_t next, uint32_t via, unsigned field)
{
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
    emit_ctx_move(e, RCX, field, false);
    EMIT(e, 0xe3, 0x07 + DBT_EXIT_STUB_SIZE); /* jrcxz over the restore + exit stub */
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
    emit_exit(e, next, via, false);
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
}

bool dbt_emit_cli(struct emitter *e)
{
    /* TODO (part 1): the virtual IF := 0. One instruction. */
    (void)e;
    return false;
}

bool dbt_emit_sti(struct emitter *e, uint64_t next)
{
    /* TODO (part 1): the virtual IF := 0x200, then leave if the VMM waits for a window
     * (through exit_shadow: why that stub?). */
    (void)e;
    (void)next;
    (void)emit_leave_if;
    return false;
}

bool dbt_emit_pushf(struct emitter *e)
{
    /* TODO (part 2): PUSHFQ pushes the guest's RFLAGS image: the real arithmetic flags and
     * DF, but the VIRTUAL IF and the virtual IOPL, TF, NT, AC, ID. At CPL 3 a native PUSHFQ
     * pushes IF = 1 and those others 0, so: push the native image, then correct the qword at
     * [RSP] from ctx.vif and ctx.vflags - without changing any flag (LEA can add), and
     * restoring whatever scratch register you borrow. */
    (void)e;
    return false;
}

bool dbt_emit_popf(struct emitter *e, uint64_t next)
{
    /* TODO (part 3): POPFQ takes the image at [RSP], RSP += 8: IF goes to ctx.vif, the
     * DBT_VFLAGS bits to ctx.vflags, TF (bit 8) also to ctx.popf_tf, DF to the real RFLAGS
     * (STD/CLD), and the arithmetic flags too: SAHF loads SF ZF AF PF CF from AH, and an ADD
     * of 0x7f to a register holding the image's OF bit (0 or 1) overflows exactly when OF
     * must be 1. Never a native POPFQ: it would make AC, NT or TF native (why is that wrong?).
     * Then leave if the VMM waits for a window (a POPF can enable interrupts too), or if TF
     * was set, both through exit_continue. */
    (void)e;
    (void)next;
    return false;
}
