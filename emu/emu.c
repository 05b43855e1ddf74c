/* emu.c - emu_execute(): from a sensitive instruction's class to the handler of its family.
 *
 * The semantics follow the Intel SDM vol. 2 entry of each instruction (operation and
 * "64-Bit Mode Exceptions"); the few places where vmlab's virtual CPU chooses (SYSENTER, RDPMC)
 * say so. Each family of instructions has its own file (emu_families.h lists them); this file
 * only maps class -> handler. Callers: trap_emulate's signal handler and dbt's callouts - so
 * nothing here or in a handler may allocate, lock or print.
 */
#include "emu_families.h"

/* A class without a handler (NONE) leaves the result EMU_UNHANDLED. */
static const emu_handler handlers[EMU_CLASS_COUNT] = {
    [EMU_CLASS_CLI] = emu_exec_cli,
    [EMU_CLASS_STI] = emu_exec_sti,
    [EMU_CLASS_HLT] = emu_exec_hlt,
    [EMU_CLASS_IN] = emu_exec_in,
    [EMU_CLASS_OUT] = emu_exec_out,
    [EMU_CLASS_INS] = emu_exec_ins,
    [EMU_CLASS_OUTS] = emu_exec_outs,
    [EMU_CLASS_MOV_CR] = emu_exec_mov_cr,
    [EMU_CLASS_MOV_DR] = emu_exec_mov_dr,
    [EMU_CLASS_LGDT] = emu_exec_lgdt,
    [EMU_CLASS_LIDT] = emu_exec_lidt,
    [EMU_CLASS_LLDT] = emu_exec_lldt,
    [EMU_CLASS_LTR] = emu_exec_ltr,
    [EMU_CLASS_LMSW] = emu_exec_lmsw,
    [EMU_CLASS_CLTS] = emu_exec_clts,
    [EMU_CLASS_RDMSR] = emu_exec_rdmsr,
    [EMU_CLASS_WRMSR] = emu_exec_wrmsr,
    [EMU_CLASS_INVLPG] = emu_exec_cache_control,
    [EMU_CLASS_INVPCID] = emu_exec_cache_control,
    [EMU_CLASS_WBINVD] = emu_exec_cache_control,
    [EMU_CLASS_INVD] = emu_exec_cache_control,
    [EMU_CLASS_RDPMC] = emu_exec_rdpmc,
    [EMU_CLASS_SWAPGS] = emu_exec_swapgs,
    [EMU_CLASS_XSETBV] = emu_exec_xsetbv,
    [EMU_CLASS_MONITOR_MWAIT] = emu_exec_cache_control,
    [EMU_CLASS_SYSRET] = emu_exec_sysret,
    [EMU_CLASS_SYSEXIT] = emu_exec_sysenter_sysexit,
    [EMU_CLASS_IRET] = emu_exec_iret,
    [EMU_CLASS_INT] = emu_exec_int,
    [EMU_CLASS_INT3] = emu_exec_int,
    [EMU_CLASS_SYSCALL] = emu_exec_syscall,
    [EMU_CLASS_SYSENTER] = emu_exec_sysenter_sysexit,
    [EMU_CLASS_FAR_CALL] = emu_exec_far_call,
    [EMU_CLASS_FAR_JMP] = emu_exec_far_jmp,
    [EMU_CLASS_FAR_RET] = emu_exec_far_ret,
    [EMU_CLASS_SGDT] = emu_exec_sgdt,
    [EMU_CLASS_SIDT] = emu_exec_sidt,
    [EMU_CLASS_SLDT] = emu_exec_sldt,
    [EMU_CLASS_STR] = emu_exec_str,
    [EMU_CLASS_SMSW] = emu_exec_smsw,
    [EMU_CLASS_PUSHF] = emu_exec_pushf,
    [EMU_CLASS_POPF] = emu_exec_popf,
    [EMU_CLASS_LAR] = emu_exec_segment_query,
    [EMU_CLASS_LSL] = emu_exec_segment_query,
    [EMU_CLASS_VERR] = emu_exec_segment_query,
    [EMU_CLASS_VERW] = emu_exec_segment_query,
    [EMU_CLASS_MOV_FROM_SEG] = emu_exec_mov_from_seg,
    [EMU_CLASS_MOV_TO_SEG] = emu_exec_mov_to_seg,
    [EMU_CLASS_PUSH_SEG] = emu_exec_push_seg,
    [EMU_CLASS_POP_SEG] = emu_exec_pop_seg,
    [EMU_CLASS_FSGSBASE] = emu_exec_fsgsbase,
    [EMU_CLASS_CPUID] = emu_exec_cpuid,
    [EMU_CLASS_RDTSC] = emu_exec_rdtsc,
    [EMU_CLASS_RDTSCP] = emu_exec_rdtsc,
};

/* Control bits that change how linear addresses translate. */
#define CR0_PAGING (X86_CR0_PG | X86_CR0_WP | X86_CR0_PE)
#define CR4_PAGING                                                                                 \
    (X86_CR4_PGE | X86_CR4_PAE | X86_CR4_PSE | X86_CR4_PCIDE | X86_CR4_SMEP | X86_CR4_SMAP)
#define EFER_NXE_BIT (1ULL << 11)

/* What the instruction did to cached translations (Intel SDM vol. 3A 4.10.4.1), told to the
 * MMU hooks here, once, whichever file (or lab replacement) emulated it: a MOV to CR3 always
 * flushes (even of the same value); a change of a paging control bit flushes everything. */
static void report_tlb_effects(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                               const struct vcpu_state *before, const struct emu_result *out)
{
    const struct vcpu_state *s = ctx->state;
    if (out->status != EMU_OK)
        return;
    if (out->cls == EMU_CLASS_MOV_CR && insn->operands[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
        insn->operands[0].reg.value == ZYDIS_REGISTER_CR3)
        emu_tlb_flush(ctx, EMU_TLB_CR3, 0);
    else if (((before->cr0 ^ s->cr0) & CR0_PAGING) || ((before->cr4 ^ s->cr4) & CR4_PAGING) ||
             ((before->efer ^ s->efer) & EFER_NXE_BIT))
        emu_tlb_flush(ctx, EMU_TLB_ALL, 0);
}

void emu_execute(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)
{
    enum emu_class cls = x86_classify(insn);
    out->cls = cls;
    out->status = EMU_UNHANDLED;
    if (cls >= EMU_CLASS_COUNT || !handlers[cls])
        return;
    struct vcpu_state before;
    bool paging_class = ctx->mmu && (cls == EMU_CLASS_MOV_CR || cls == EMU_CLASS_WRMSR ||
                                     cls == EMU_CLASS_LMSW || cls == EMU_CLASS_CLTS);
    if (paging_class) {
        before.cr0 = ctx->state->cr0;
        before.cr4 = ctx->state->cr4;
        before.efer = ctx->state->efer;
    }
    handlers[cls](ctx, insn, out);
    if (paging_class)
        report_tlb_effects(ctx, insn, &before, out);
}

void emu_complete_in(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                     const struct emu_io *io, const uint8_t *data, struct emu_result *out)
{
    out->status = EMU_OK;
    if (io->string)
        emu_string_in_done(ctx, insn, io, data, out);
    else
        emu_privileged_in_done(ctx, insn, io, data, out);
}
