/* vcpu_state.h - the architectural state of one virtual CPU, as the guest should see it.
 *
 * Every backend keeps its guest in this form at sync points (QEMU's CPUArchState plays the same
 * role): trap_emulate copies the signal ucontext in and out around an emulation, dbt keeps it in
 * memory next to its code cache, vtx converts it to and from struct kvm_regs/kvm_sregs.
 * Field names follow the Intel SDM. RFLAGS holds the *virtual* IF and IOPL: on trap_emulate the
 * real IF of the host thread is always 1 and IOPL 0.
 */
#ifndef VMLAB_VCPU_STATE_H
#define VMLAB_VCPU_STATE_H

#include <stdbool.h>
#include <stdint.h>

/* GPR index = ModRM/REX register number (Intel SDM vol. 2A, table 2-2). */
enum x86_gpr {
    X86_RAX,
    X86_RCX,
    X86_RDX,
    X86_RBX,
    X86_RSP,
    X86_RBP,
    X86_RSI,
    X86_RDI,
    X86_R8,
    X86_R9,
    X86_R10,
    X86_R11,
    X86_R12,
    X86_R13,
    X86_R14,
    X86_R15,
    X86_GPR_MAX_VALUE = X86_R15
};

/* A segment register: visible selector plus the hidden descriptor cache (SDM vol. 3A 3.4.3).
 * attrib uses the VMCS access-rights layout: type[3:0] S[4] DPL[6:5] P[7] AVL[12] L[13] DB[14]
 * G[15]. */
struct x86_segment {
    uint64_t base;
    uint32_t limit;
    uint16_t selector;
    uint16_t attrib;
};

/* GDTR/IDTR (SDM vol. 3A 2.4.1). */
struct x86_dtable {
    uint64_t base;
    uint16_t limit;
};

struct vcpu_state {
    uint64_t gpr[16];
    uint64_t rip;
    uint64_t rflags; /* with the virtual IF/IOPL */

    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t xcr0;
    uint64_t efer;
    uint64_t dr[8]; /* DR4/DR5 alias DR6/DR7 when CR4.DE=0; kept separately for simplicity */

    struct x86_dtable gdtr, idtr;
    struct x86_segment cs, ss, ds, es, fs, gs, ldtr, tr;

    /* MSRs a small kernel touches (SDM vol. 4). */
    uint64_t kernel_gs_base;
    uint64_t star, lstar, cstar, sfmask;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t tsc_aux, pat, apic_base, misc_enable, mtrr_def_type;
    int64_t tsc_offset; /* virtual TSC = emu_time_ns() + tsc_offset (1 GHz virtual clock) */

    /* Interrupt shadow after STI / MOV SS (SDM vol. 3A 6.8.3): interrupts are inhibited until
     * the next instruction has completed. */
    bool interrupt_shadow;
};

#endif
