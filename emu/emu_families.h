/* emu_families.h - the handlers of each family of sensitive instructions, one file each.
 *
 * emu.c maps every class of emu_class.h to one of these (a table, not a switch); each has the
 * emu_handler signature (emu_internal.h): emulate the decoded instruction at
 * ctx->state->rip on the virtual CPU at CPL 0, fill `out`. Handlers that serve several
 * classes read out->cls, which the dispatcher sets first.
 *
 *   file                  family
 *   emu_privileged.c      CLI STI HLT IN OUT MOV-CRn (the trap-and-emulate lab's family,
 *                         declared in emu_privileged.h)
 *   emu_flags.c           PUSHF POPF
 *   emu_string_io.c       INS OUTS (REP)
 *   emu_control.c         MOV-DRn LMSW CLTS SMSW XSETBV, cache and TLB control
 *   emu_msr.c             RDMSR WRMSR RDPMC SWAPGS RD/WR{FS,GS}BASE
 *   emu_descriptors.c     LGDT LIDT SGDT SIDT LLDT LTR SLDT STR
 *   emu_segments.c        MOV/PUSH/POP Sreg, far CALL/JMP/RET, LAR LSL VERR VERW
 *   emu_transfer.c        SYSCALL SYSRET SYSENTER SYSEXIT IRET INT n / INT3 / INT1
 *   emu_cpuid.c           CPUID
 *   emu_time.c            RDTSC RDTSCP
 */
#ifndef VMLAB_EMU_FAMILIES_H
#define VMLAB_EMU_FAMILIES_H

#include "emu_internal.h"
#include "emu_privileged.h"

#define EMU_HANDLER(name)                                                                          \
    void name(struct emu_ctx *ctx, const struct x86_decoded_insn *insn, struct emu_result *out)

/* emu_flags.c */
EMU_HANDLER(emu_exec_pushf);
EMU_HANDLER(emu_exec_popf);

/* emu_string_io.c; emu_string_in_done() completes an INS with the VMM's data */
EMU_HANDLER(emu_exec_ins);
EMU_HANDLER(emu_exec_outs);
void emu_string_in_done(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                        const struct emu_io *io, const uint8_t *data, struct emu_result *out);

/* emu_control.c */
EMU_HANDLER(emu_exec_mov_dr);
EMU_HANDLER(emu_exec_lmsw);
EMU_HANDLER(emu_exec_clts);
EMU_HANDLER(emu_exec_smsw);
EMU_HANDLER(emu_exec_xsetbv);
EMU_HANDLER(emu_exec_cache_control);

/* emu_msr.c */
EMU_HANDLER(emu_exec_rdmsr);
EMU_HANDLER(emu_exec_wrmsr);
EMU_HANDLER(emu_exec_rdpmc);
EMU_HANDLER(emu_exec_swapgs);
EMU_HANDLER(emu_exec_fsgsbase);

/* emu_descriptors.c */
EMU_HANDLER(emu_exec_lgdt);
EMU_HANDLER(emu_exec_lidt);
EMU_HANDLER(emu_exec_sgdt);
EMU_HANDLER(emu_exec_sidt);
EMU_HANDLER(emu_exec_lldt);
EMU_HANDLER(emu_exec_ltr);
EMU_HANDLER(emu_exec_sldt);
EMU_HANDLER(emu_exec_str);

/* emu_segments.c */
EMU_HANDLER(emu_exec_mov_from_seg);
EMU_HANDLER(emu_exec_mov_to_seg);
EMU_HANDLER(emu_exec_push_seg);
EMU_HANDLER(emu_exec_pop_seg);
EMU_HANDLER(emu_exec_far_call);
EMU_HANDLER(emu_exec_far_jmp);
EMU_HANDLER(emu_exec_far_ret);
EMU_HANDLER(emu_exec_segment_query); /* LAR LSL VERR VERW */

/* emu_transfer.c */
EMU_HANDLER(emu_exec_syscall);
EMU_HANDLER(emu_exec_sysret);
EMU_HANDLER(emu_exec_sysenter_sysexit);
EMU_HANDLER(emu_exec_iret);
EMU_HANDLER(emu_exec_int); /* INT n, INT3, INT1, INTO */

/* emu_cpuid.c, emu_time.c */
EMU_HANDLER(emu_exec_cpuid);
EMU_HANDLER(emu_exec_rdtsc); /* RDTSC RDTSCP */

#endif
