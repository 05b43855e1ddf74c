/* dbt_inline.c - CLI, STI, PUSHF and POPF translated into a few host instructions on the
 * virtual flags, without a call and without a kernel round trip.
 *
 * The virtual IF lives in the context page (ctx.vif is 0 or 0x200), and so do IOPL, TF, NT, AC
 * and ID (ctx.vflags: dbt.h DBT_VFLAGS says why they are never native); the guest's arithmetic
 * flags and DF are the native RFLAGS. None of these four instructions may change the
 * arithmetic flags (SDM vol. 2: CLI/STI "Flags Affected": only IF), so every sequence below
 * uses only MOV, LEA, NOT, JRCXZ and SAHF-style loads:
 *
 *   CLI    mov qword [vif], 0                        one store
 *   STI    mov qword [vif], 0x200                    one store, then the window check
 *   PUSHF  pushfq; image += vif + vflags - 0x200     (the native image always has IF=1 and
 *                                                    IOPL, TF, NT, AC, ID clear at CPL 3),
 *                                                    through two scratch slots in the
 *                                                    context page
 *   POPF   vif and vflags from the image; DF with STD/CLD; the arithmetic flags with SAHF (SF
 *          ZF AF PF CF) and an ADD that overflows exactly when the image's OF is set. Never a
 *          native POPFQ: it would make AC (#AC on unaligned accesses at CPL 3), NT or TF
 *          native.
 *
 * The window check: when the VMM waits for the guest to enable interrupts
 * (request_interrupt_window, mirrored in ctx.want_window), STI and POPF leave translated code
 * right after themselves - an STI through exit_shadow, because the instruction after it is in
 * the interrupt shadow (SDM vol. 3A 6.8.3) and runs before any interrupt is delivered. A POPF
 * that sets TF leaves too: the dispatcher single-steps from the next instruction on (dbt.c).
 */
#include "dbt_inline.h"

#include "dbt_emit.h"

/* mov qword [vif], imm */
bool dbt_emit_cli(struct emitter *e)
{
    emit_ctx_store_imm(e, DBT_CTX_VIF, 0);
    return true;
}

/* Leave after the instruction (at guest RIP `next`) when the context field `field` is nonzero
 * (the VMM waits for a window; POPF set TF). */
static void emit_leave_if(struct emitter *e, uint64_t next, uint32_t via, unsigned field)
{
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
    emit_ctx_move(e, RCX, field, false);
    EMIT(e, 0xe3, 0x07 + DBT_EXIT_STUB_SIZE); /* jrcxz over the restore + exit stub */
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
    emit_exit(e, next, via, false);
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
}

bool dbt_emit_sti(struct emitter *e, uint64_t next)
{
    emit_ctx_store_imm(e, DBT_CTX_VIF, (uint32_t)DBT_IF);
    emit_leave_if(e, next, e->c->exit_shadow, DBT_CTX_WANT_WINDOW);
    return true;
}

bool dbt_emit_pushf(struct emitter *e)
{
    EMIT(e, 0x9c); /* pushfq */
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, true);
    EMIT(e, 0x48, 0x8b, 0x04, 0x24); /* mov rax, [rsp] */
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
    emit_ctx_move(e, RCX, DBT_CTX_VIF, false);
    EMIT(e, 0x48, 0x8d, 0x84, 0x08, 0x00, 0xfe, 0xff, 0xff); /* lea rax, [rax+rcx-0x200] */
    emit_ctx_move(e, RCX, DBT_CTX_VFLAGS, false);
    EMIT(e, 0x48, 0x8d, 0x04, 0x08); /* lea rax, [rax+rcx] */
    EMIT(e, 0x48, 0x89, 0x04, 0x24); /* mov [rsp], rax */
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, false);
    return true;
}

/* mov ecx, eax; and ecx, mask; mov [field], rcx */
static void emit_image_bits(struct emitter *e, uint32_t mask, unsigned field)
{
    EMIT(e, 0x89, 0xc1, 0x81, 0xe1);
    emit_u32(e, mask);
    emit_ctx_move(e, RCX, field, true);
}

bool dbt_emit_popf(struct emitter *e, uint64_t next)
{
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, true);
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, true);
    EMIT(e, 0x48, 0x8b, 0x04, 0x24);       /* mov rax, [rsp] (the image) */
    EMIT(e, 0x48, 0x8d, 0x64, 0x24, 0x08); /* lea rsp, [rsp+8] */
    emit_image_bits(e, (uint32_t)DBT_IF, DBT_CTX_VIF);
    emit_image_bits(e, (uint32_t)DBT_VFLAGS, DBT_CTX_VFLAGS);
    emit_image_bits(e, 0x100, DBT_CTX_POPF_TF);
    /* test eax, DF; jz 1f; std; jmp 2f; 1: cld; 2: */
    EMIT(e, 0xa9, 0x00, 0x04, 0x00, 0x00, 0x74, 0x03, 0xfd, 0xeb, 0x01, 0xfc);
    /* OF via add cl,0x7f on (image>>11)&1; SF ZF AF PF CF via sahf */
    EMIT(e, 0x89, 0xc1, 0xc1, 0xe9, 0x0b, 0x83, 0xe1, 0x01, 0x80, 0xc1, 0x7f, 0x88, 0xc4, 0x9e);
    emit_ctx_move(e, RCX, DBT_CTX_SAVE_RCX, false);
    emit_ctx_move(e, RAX, DBT_CTX_SAVE_RAX, false);
    emit_leave_if(e, next, e->c->exit_continue, DBT_CTX_WANT_WINDOW);
    emit_leave_if(e, next, e->c->exit_continue, DBT_CTX_POPF_TF);
    return true;
}
