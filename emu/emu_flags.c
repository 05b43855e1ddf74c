/* emu_flags.c - PUSHF and POPF on the virtual RFLAGS.
 *
 * The sensitive-but-unprivileged pair of the interrupt flag (Robin & Irvine 2000): at CPL 3
 * PUSHF pushes the real IF (always 1) and POPF ignores a change of IF without faulting, so
 * trap_emulate never gets here for them; dbt inlines the 64-bit forms (dbt_inline.c) and
 * calls these for the 16-bit ones.
 */
#include "emu_families.h"

void emu_exec_pushf(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                    struct emu_result *out)
{
    unsigned size = insn->info.operand_width / 8;
    /* RF and VM read as 0 in the pushed image (SDM vol. 2B PUSHF) */
    uint64_t image = ctx->state->rflags & ~(uint64_t)(X86_EFLAGS_RF | X86_EFLAGS_VM);
    if (!emu_push(ctx, image, size, out))
        return;
    emu_note(out, "IF_virt pushed", (image >> 9) & 1, (image >> 9) & 1);
    emu_advance(ctx, insn, out);
}

void emu_exec_popf(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    unsigned size = insn->info.operand_width / 8;
    uint64_t v;
    if (!emu_pop(ctx, &v, size, out))
        return;
    uint64_t mask = size == 2 ? (RFLAGS_WRITABLE & 0xFFFF) : RFLAGS_WRITABLE;
    bool was = s->rflags & X86_EFLAGS_IF;
    s->rflags = (s->rflags & ~mask) | (v & mask) | X86_EFLAGS_FIXED;
    bool now = s->rflags & X86_EFLAGS_IF;
    emu_note(out, "IF_virt", was, now);
    out->interrupts_enabled_now = now && !was;
    emu_advance(ctx, insn, out);
}
