/* emu_transfer.c - system control transfers: SYSCALL, SYSRET, SYSENTER, SYSEXIT, IRET, INT n,
 * INT3, INT1 and INTO.
 *
 * The category Popek & Goldberg's table calls control transfers (emu_class.h): they consult
 * descriptors, the CPL or MSRs the guest set up. On trap_emulate a guest SYSCALL must never
 * reach the host kernel (Syscall User Dispatch turns it into SIGSYS, see trap_emulate.c).
 */
#include "emu_families.h"

void emu_exec_syscall(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                      struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    if (!(s->efer & EFER_SCE)) { /* SDM vol. 2B SYSCALL: #UD if EFER.SCE = 0 */
        emu_raise(out, EMU_UD, false, 0);
        return;
    }
    uint64_t next = s->rip + insn->length;
    s->gpr[X86_RCX] = next;
    s->gpr[X86_R11] = s->rflags & ~(uint64_t)X86_EFLAGS_RF;
    s->rflags &= ~(s->sfmask | X86_EFLAGS_RF);
    s->rflags |= X86_EFLAGS_FIXED;
    uint16_t cs = (uint16_t)((s->star >> 32) & 0xFFFC);
    /* Flat 64-bit CS and SS as the CPU loads them, without reading the GDT. */
    s->cs.selector = cs;
    s->cs.base = 0;
    s->cs.limit = 0xFFFFFFFF;
    s->cs.attrib = 0xB | (1 << 4) | (1 << 7) | (1 << 13) | (1 << 15);
    s->ss.selector = (uint16_t)(cs + 8);
    s->ss.base = 0;
    s->ss.limit = 0xFFFFFFFF;
    s->ss.attrib = 0x3 | (1 << 4) | (1 << 7) | (1 << 14) | (1 << 15);
    emu_note(out, "RIP", next, s->lstar);
    s->rip = s->lstar;
    out->status = EMU_OK;
}

void emu_exec_sysret(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                     struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    (void)insn;
    if (!(s->efer & EFER_SCE)) {
        emu_raise(out, EMU_UD, false, 0);
        return;
    }
    if (!emu_canonical(s->gpr[X86_RCX])) {
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    /* SYSRETQ: RIP = RCX, RFLAGS = R11, CS = STAR[63:48] + 16, SS = STAR[63:48] + 8, RPL 3.
     * The emulating backends model a CPL-0 guest; the returned-to privilege is kept only in
     * the selectors' RPL (the code after SYSRET runs exactly as before). */
    uint16_t base = (uint16_t)(s->star >> 48);
    bool was = s->rflags & X86_EFLAGS_IF;
    s->rflags = (s->gpr[X86_R11] & RFLAGS_WRITABLE) | X86_EFLAGS_FIXED;
    out->interrupts_enabled_now = !was && (s->rflags & X86_EFLAGS_IF);
    s->cs.selector = (uint16_t)((base + 16) | 3);
    s->ss.selector = (uint16_t)((base + 8) | 3);
    emu_note(out, "RIP", s->rip, s->gpr[X86_RCX]);
    s->rip = s->gpr[X86_RCX];
    out->status = EMU_OK;
}

void emu_exec_sysenter_sysexit(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                               struct emu_result *out)
{
    (void)ctx;
    (void)insn;
    /* vmlab's virtual CPU follows AMD in long mode: SYSENTER/SYSEXIT raise #UD (AMD APM
     * vol. 3, SYSENTER: "#UD ... in long mode"). */
    emu_raise(out, EMU_UD, false, 0);
}

void emu_exec_iret(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    unsigned size = insn->info.operand_width / 8; /* IRETQ: 8 */
    uint64_t f[5];                                /* RIP, CS, RFLAGS, RSP, SS */
    uint64_t rsp = s->gpr[X86_RSP];
    for (unsigned i = 0; i < 5; i++) {
        f[i] = 0;
        if (!emu_read(ctx, rsp + (uint64_t)i * size, &f[i], size, out))
            return;
    }
    struct x86_segment old_cs = s->cs;
    if (!emu_load_code_segment(ctx, (uint16_t)f[1], out))
        return;
    if (!emu_canonical(f[0])) {
        s->cs = old_cs;
        emu_raise(out, EMU_GP, true, 0);
        return;
    }
    uint16_t ss = (uint16_t)f[4];
    if ((ss & ~3u) != 0 && !emu_load_data_segment(ctx, ZYDIS_REGISTER_SS, ss, out)) {
        s->cs = old_cs;
        return;
    }
    if ((ss & ~3u) == 0)
        s->ss.selector = ss;
    bool was = s->rflags & X86_EFLAGS_IF;
    uint64_t mask = size == 2 ? (RFLAGS_WRITABLE & 0xFFFF) : RFLAGS_WRITABLE;
    s->rflags = (s->rflags & ~mask) | (f[2] & mask) | X86_EFLAGS_FIXED;
    s->rflags &= ~(uint64_t)X86_EFLAGS_RF;
    out->interrupts_enabled_now = !was && (s->rflags & X86_EFLAGS_IF);
    s->gpr[X86_RSP] = f[3];
    s->rip = f[0];
    s->interrupt_shadow = false;
    emu_note(out, "IF_virt", was, (s->rflags & X86_EFLAGS_IF) != 0);
    out->status = EMU_OK;
}

void emu_exec_int(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    uint8_t vector;
    enum emu_event_kind kind = EMU_EVENT_SOFTWARE;
    switch (insn->info.mnemonic) {
    case ZYDIS_MNEMONIC_INT3:
        vector = 3;
        break;
    case ZYDIS_MNEMONIC_INT1:
        vector = 1;
        kind = EMU_EVENT_TRAP;
        break;
    case ZYDIS_MNEMONIC_INTO:
        emu_raise(out, EMU_UD, false, 0);
        return; /* invalid in 64-bit */
    default:
        vector = (uint8_t)insn->operands[0].imm.value.u;
        break;
    }
    enum emu_status st;
    if (kind == EMU_EVENT_SOFTWARE) {
        st = emu_deliver_software_interrupt(ctx, vector, insn->length, out);
    } else {
        s->rip += insn->length; /* INT1: a trap-class #DB, after the instruction */
        st = emu_deliver_event(ctx, kind, vector, false, 0, out);
    }
    out->status = st == EMU_SHUTDOWN ? EMU_SHUTDOWN : EMU_OK;
}
