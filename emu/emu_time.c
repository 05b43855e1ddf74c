/* emu_time.c - virtual time (RDTSC/RDTSCP) and the reset state of the guest model. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../vmm/guest_layout.h"
#include "emu_families.h"

uint64_t emu_time_ns(void)
{
    /* A raw system call, not the vDSO: the vDSO reads the TSC, which may fault in a thread
     * where trap_emulate enabled RDTSC trapping. */
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t emu_virtual_tsc(const struct vcpu_state *state)
{
    return emu_time_ns() + (uint64_t)state->tsc_offset;
}

/* RDTSC / RDTSCP, when the host lets the backend trap them: the virtual TSC (1 GHz). */
void emu_exec_rdtsc(struct emu_ctx *ctx, const struct x86_decoded_insn *insn,
                    struct emu_result *out)
{
    struct vcpu_state *s = ctx->state;
    uint64_t tsc = emu_virtual_tsc(s);
    s->gpr[X86_RAX] = (uint32_t)tsc;
    s->gpr[X86_RDX] = tsc >> 32;
    if (out->cls == EMU_CLASS_RDTSCP)
        s->gpr[X86_RCX] = (uint32_t)s->tsc_aux;
    emu_note(out, "TSC_virt", tsc, tsc);
    emu_advance(ctx, insn, out);
}

/* VMCS-layout access rights (SDM vol. 3C 24.4.1): type[3:0] S[4] DPL[6:5] P[7] L[13] DB[14]
 * G[15]. */
#define AR_CODE64 (0xB | (1 << 4) | (1 << 7) | (1 << 13) | (1 << 15))
#define AR_DATA (0x3 | (1 << 4) | (1 << 7) | (1 << 14) | (1 << 15))
#define AR_TSS_BUSY64 (0xB | (1 << 7))
#define AR_LDT_EMPTY 0x82 /* type LDT, present, selector 0: a valid, empty LDT */

void emu_reset_state(struct vcpu_state *s, uint64_t entry)
{
    memset(s, 0, sizeof(*s));
    s->rip = entry;
    s->gpr[X86_RSP] = GUEST_STACK_TOP;
    s->rflags = X86_EFLAGS_FIXED;
    s->cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_PG;
    s->cr4 = X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
    s->cr3 = GUEST_RAM_BASE + GUEST_PT_OFFSET;
    s->efer = (1ULL << 8) | (1ULL << 10) | (1ULL << 11); /* LME, LMA, NXE (SDM vol. 3A 2.2.1) */
    s->xcr0 = 1;
    s->gdtr.base = GUEST_RAM_BASE + GUEST_GDT_OFFSET;
    s->gdtr.limit = GUEST_GDT_LIMIT;
    s->idtr.base = GUEST_RAM_BASE + GUEST_IDT_OFFSET;
    s->idtr.limit = 256 * 16 - 1;
    s->cs = (struct x86_segment){
        .base = 0, .limit = 0xFFFFFFFF, .selector = GUEST_SEL_CODE64, .attrib = AR_CODE64};
    struct x86_segment data = {
        .base = 0, .limit = 0xFFFFFFFF, .selector = GUEST_SEL_DATA, .attrib = AR_DATA};
    s->ds = s->es = s->ss = s->fs = s->gs = data;
    s->tr = (struct x86_segment){.base = GUEST_RAM_BASE + GUEST_TSS_OFFSET,
                                 .limit = 0x67,
                                 .selector = GUEST_SEL_TSS,
                                 .attrib = AR_TSS_BUSY64};
    s->ldtr = (struct x86_segment){.attrib = AR_LDT_EMPTY};
    s->dr[6] = 0xFFFF0FF0; /* reset values (SDM vol. 3B 18.2) */
    s->dr[7] = 0x400;
    s->pat = 0x0007040600070406ULL;
    s->apic_base = 0xFEE00900ULL;            /* enabled, bootstrap processor */
    s->misc_enable = 1;                      /* fast strings */
    s->tsc_offset = -(int64_t)emu_time_ns(); /* the virtual TSC starts at 0 at reset */
}
