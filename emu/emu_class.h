/* emu_class.h - the sensitive-instruction classes and their Popek-Goldberg category.
 *
 * One table (EMU_CLASS_TABLE) drives the classifier (`vmlab classify`, the dbt scanner), the
 * statistics and the trace. Categories (Popek & Goldberg 1974; Robin & Irvine, USENIX Security
 * 2000):
 *   PG_PRIVILEGED             faults (#GP/#UD) when executed outside ring 0: trap-and-emulate
 *                             catches it.
 *   PG_SENSITIVE_UNPRIVILEGED reads or changes state the guest must not see or touch, but runs
 *                             at CPL 3 without faulting: trap-and-emulate cannot catch it.
 *   PG_HOST_CONFIGURABLE      unprivileged by default, but the host kernel may make it fault
 *                             (CPUID faulting, CR4.TSD via PR_SET_TSC, CR4.UMIP).
 *   PG_CONTROL_TRANSFER       system control transfer (INT n, SYSCALL, IRET, far transfers):
 *                             sensitive because it consults descriptors and CPL.
 */
#ifndef VMLAB_EMU_CLASS_H
#define VMLAB_EMU_CLASS_H

enum pg_category {
    PG_INNOCUOUS,
    PG_PRIVILEGED,
    PG_SENSITIVE_UNPRIVILEGED,
    PG_HOST_CONFIGURABLE,
    PG_CONTROL_TRANSFER,
    PG_CATEGORY_MAX_VALUE = PG_CONTROL_TRANSFER
};

/* X(id, name, category, reference, why) */
/* clang-format off */
#define EMU_CLASS_TABLE(X) \
    X(NONE, "none", PG_INNOCUOUS, "", \
      "not sensitive") \
    X(CLI, "cli", PG_PRIVILEGED, "SDM 2A CLI", \
      "clears IF; #GP if CPL > IOPL") \
    X(STI, "sti", PG_PRIVILEGED, "SDM 2B STI", \
      "sets IF; #GP if CPL > IOPL") \
    X(HLT, "hlt", PG_PRIVILEGED, "SDM 2A HLT", \
      "halts the CPU; #GP if CPL != 0") \
    X(IN, "in", PG_PRIVILEGED, "SDM 2A IN", \
      "port input; #GP if CPL > IOPL and TSS bitmap denies") \
    X(OUT, "out", PG_PRIVILEGED, "SDM 2B OUT", \
      "port output; #GP if CPL > IOPL") \
    X(INS, "ins", PG_PRIVILEGED, "SDM 2A INS", \
      "string port input; #GP if CPL > IOPL") \
    X(OUTS, "outs", PG_PRIVILEGED, "SDM 2B OUTS", \
      "string port output; #GP if CPL > IOPL") \
    X(MOV_CR, "mov_cr", PG_PRIVILEGED, "SDM 2B MOV-Control Registers", \
      "#GP if CPL != 0") \
    X(MOV_DR, "mov_dr", PG_PRIVILEGED, "SDM 2B MOV-Debug Registers", \
      "#GP if CPL != 0") \
    X(LGDT, "lgdt", PG_PRIVILEGED, "SDM 2A LGDT/LIDT", \
      "loads GDTR; #GP if CPL != 0") \
    X(LIDT, "lidt", PG_PRIVILEGED, "SDM 2A LGDT/LIDT", \
      "loads IDTR; #GP if CPL != 0") \
    X(LLDT, "lldt", PG_PRIVILEGED, "SDM 2A LLDT", \
      "loads LDTR; #GP if CPL != 0") \
    X(LTR, "ltr", PG_PRIVILEGED, "SDM 2A LTR", \
      "loads TR; #GP if CPL != 0") \
    X(LMSW, "lmsw", PG_PRIVILEGED, "SDM 2A LMSW", \
      "writes CR0[3:0]; #GP if CPL != 0") \
    X(CLTS, "clts", PG_PRIVILEGED, "SDM 2A CLTS", \
      "clears CR0.TS; #GP if CPL != 0") \
    X(RDMSR, "rdmsr", PG_PRIVILEGED, "SDM 2B RDMSR", \
      "#GP if CPL != 0") \
    X(WRMSR, "wrmsr", PG_PRIVILEGED, "SDM 2B WRMSR", \
      "#GP if CPL != 0") \
    X(INVLPG, "invlpg", PG_PRIVILEGED, "SDM 2A INVLPG", \
      "TLB control; #GP if CPL != 0") \
    X(INVPCID, "invpcid", PG_PRIVILEGED, "SDM 2A INVPCID", \
      "TLB control; #GP if CPL != 0") \
    X(WBINVD, "wbinvd", PG_PRIVILEGED, "SDM 2B WBINVD", \
      "cache control; #GP if CPL != 0") \
    X(INVD, "invd", PG_PRIVILEGED, "SDM 2A INVD", \
      "cache control; #GP if CPL != 0") \
    X(RDPMC, "rdpmc", PG_PRIVILEGED, "SDM 2B RDPMC", \
      "#GP if CPL != 0 and CR4.PCE = 0") \
    X(SWAPGS, "swapgs", PG_PRIVILEGED, "SDM 2B SWAPGS", \
      "#GP if CPL != 0") \
    X(XSETBV, "xsetbv", PG_PRIVILEGED, "SDM 2B XSETBV", \
      "#GP if CPL != 0") \
    X(MONITOR_MWAIT, "monitor_mwait", PG_PRIVILEGED, "SDM 2B MWAIT", \
      "#UD at CPL > 0 by default") \
    X(SYSRET, "sysret", PG_PRIVILEGED, "SDM 2B SYSRET", \
      "#GP if CPL != 0") \
    X(SYSEXIT, "sysexit", PG_PRIVILEGED, "SDM 2B SYSEXIT", \
      "#GP if CPL != 0") \
    X(IRET, "iret", PG_CONTROL_TRANSFER, "SDM 2A IRET", \
      "pops CS/RFLAGS; faults only on a privilege change the CPL forbids") \
    X(INT, "int", PG_CONTROL_TRANSFER, "SDM 2A INT n", \
      "#GP if gate DPL < CPL; pushes CS (CPL)") \
    X(INT3, "int3", PG_CONTROL_TRANSFER, "SDM 2A INT3", \
      "breakpoint trap through the IDT") \
    X(SYSCALL, "syscall", PG_CONTROL_TRANSFER, "SDM 2B SYSCALL", \
      "enters the (host!) kernel") \
    X(SYSENTER, "sysenter", PG_CONTROL_TRANSFER, "SDM 2B SYSENTER", \
      "enters the (host!) kernel") \
    X(FAR_CALL, "far_call", PG_SENSITIVE_UNPRIVILEGED, "SDM 2A CALL", \
      "checks descriptor DPL against CPL (Robin & Irvine)") \
    X(FAR_JMP, "far_jmp", PG_SENSITIVE_UNPRIVILEGED, "SDM 2A JMP", \
      "checks descriptor DPL against CPL (Robin & Irvine)") \
    X(FAR_RET, "far_ret", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B RET", \
      "checks descriptor DPL against CPL (Robin & Irvine)") \
    X(SGDT, "sgdt", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B SGDT", \
      "reveals GDTR at CPL 3 (UMIP aside)") \
    X(SIDT, "sidt", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B SIDT", \
      "reveals IDTR at CPL 3 (UMIP aside)") \
    X(SLDT, "sldt", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B SLDT", \
      "reveals LDTR at CPL 3 (UMIP aside)") \
    X(STR, "str", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B STR", \
      "reveals TR at CPL 3 (UMIP aside)") \
    X(SMSW, "smsw", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B SMSW", \
      "reveals CR0[15:0] at CPL 3") \
    X(PUSHF, "pushf", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B PUSHF", \
      "reveals the real IF and IOPL") \
    X(POPF, "popf", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B POPF", \
      "a change of IF is silently ignored at CPL > IOPL") \
    X(LAR, "lar", PG_SENSITIVE_UNPRIVILEGED, "SDM 2A LAR", \
      "result depends on CPL vs DPL") \
    X(LSL, "lsl", PG_SENSITIVE_UNPRIVILEGED, "SDM 2A LSL", \
      "result depends on CPL vs DPL") \
    X(VERR, "verr", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B VERR/VERW", \
      "result depends on CPL") \
    X(VERW, "verw", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B VERR/VERW", \
      "result depends on CPL") \
    X(MOV_FROM_SEG, "mov_from_seg", PG_SENSITIVE_UNPRIVILEGED, "SDM 2A MOV", \
      "reveals the RPL (CPL in CS)") \
    X(MOV_TO_SEG, "mov_to_seg", PG_SENSITIVE_UNPRIVILEGED, "SDM 2A MOV", \
      "checks DPL against CPL") \
    X(PUSH_SEG, "push_seg", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B PUSH", \
      "reveals the selector RPL") \
    X(POP_SEG, "pop_seg", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B POP", \
      "checks DPL against CPL") \
    X(FSGSBASE, "fsgsbase", PG_SENSITIVE_UNPRIVILEGED, "SDM 2B RDFSBASE", \
      "touches the host's FS/GS base when CR4.FSGSBASE is set by the host") \
    X(CPUID, "cpuid", PG_HOST_CONFIGURABLE, "SDM 2A CPUID", \
      "reveals the host CPU; faults only with CPUID faulting") \
    X(RDTSC, "rdtsc", PG_HOST_CONFIGURABLE, "SDM 2B RDTSC", \
      "reveals host time; faults only with CR4.TSD") \
    X(RDTSCP, "rdtscp", PG_HOST_CONFIGURABLE, "SDM 2B RDTSCP", \
      "reveals host time and TSC_AUX; faults only with CR4.TSD")

/* clang-format on */
enum emu_class {
#define EMU_CLASS_ENUM(id, name, cat, ref, why) EMU_CLASS_##id,
    EMU_CLASS_TABLE(EMU_CLASS_ENUM)
#undef EMU_CLASS_ENUM
        EMU_CLASS_COUNT,
    EMU_CLASS_MAX_VALUE = EMU_CLASS_COUNT - 1
};

struct emu_class_info {
    const char *name;
    enum pg_category category;
    const char *reference; /* Intel SDM volume and entry */
    const char *why;
};

const struct emu_class_info *emu_class_info(unsigned cls); /* never NULL (NONE for unknown) */
const char *pg_category_name(enum pg_category cat);        /* "privileged", ... */

#endif
