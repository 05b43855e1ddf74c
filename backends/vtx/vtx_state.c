/* vtx_state.c - struct vcpu_state <-> KVM's register structures.
 *
 * Segment attributes are kept in the VMCS access-rights layout (Intel SDM vol. 3C 24.4.1),
 * which maps one-to-one onto struct kvm_segment's fields.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vtx.h"

/* Bit positions of the VMCS guest-segment access-rights field (SDM vol. 3C 24.4.1, table
 * 24-2), the layout of struct x86_segment.attrib. No uapi header names them. */
enum {
    VTX_AR_TYPE_MASK = 0xF,
    VTX_AR_S = 4,
    VTX_AR_DPL = 5, /* 2 bits */
    VTX_AR_P = 7,
    VTX_AR_AVL = 12,
    VTX_AR_L = 13,
    VTX_AR_DB = 14,
    VTX_AR_G = 15,
};

static void seg_to_kvm(const struct x86_segment *s, struct kvm_segment *k)
{
    memset(k, 0, sizeof(*k));
    k->base = s->base;
    k->limit = s->limit;
    k->selector = s->selector;
    k->type = s->attrib & VTX_AR_TYPE_MASK;
    k->s = (s->attrib >> VTX_AR_S) & 1;
    k->dpl = (s->attrib >> VTX_AR_DPL) & 3;
    k->present = (s->attrib >> VTX_AR_P) & 1;
    k->avl = (s->attrib >> VTX_AR_AVL) & 1;
    k->l = (s->attrib >> VTX_AR_L) & 1;
    k->db = (s->attrib >> VTX_AR_DB) & 1;
    k->g = (s->attrib >> VTX_AR_G) & 1;
    /* A not-present segment (a null data selector, an LDTR never loaded) is "unusable" in VMX
     * terms (SDM vol. 3C 24.4.1, AR bit 16); KVM checks it at entry (26.3.1.2). */
    k->unusable = !k->present;
}

static void seg_from_kvm(const struct kvm_segment *k, struct x86_segment *s)
{
    s->base = k->base;
    s->limit = k->limit;
    s->selector = k->selector;
    s->attrib =
        (uint16_t)((k->type & VTX_AR_TYPE_MASK) | (k->s << VTX_AR_S) | (k->dpl << VTX_AR_DPL) |
                   ((k->present && !k->unusable) << VTX_AR_P) | (k->avl << VTX_AR_AVL) |
                   (k->l << VTX_AR_L) | (k->db << VTX_AR_DB) | (k->g << VTX_AR_G));
}

/* MSRs vmlab's state carries beyond the special registers, with their architectural indices
 * (SDM vol. 4, table 2-2). EFER travels in kvm_sregs; APIC_BASE too. */
enum {
    VTX_MSR_SYSENTER_CS = 0x174,
    VTX_MSR_SYSENTER_ESP = 0x175,
    VTX_MSR_SYSENTER_EIP = 0x176,
    VTX_MSR_MISC_ENABLE = 0x1A0,
    VTX_MSR_PAT = 0x277,
    VTX_MSR_MTRR_DEF_TYPE = 0x2FF,
    VTX_MSR_STAR = 0xC0000081,
    VTX_MSR_LSTAR = 0xC0000082,
    VTX_MSR_CSTAR = 0xC0000083,
    VTX_MSR_SFMASK = 0xC0000084,
    VTX_MSR_KERNEL_GS_BASE = 0xC0000102,
    VTX_MSR_TSC_AUX = 0xC0000103,
};

static const struct {
    uint32_t index;
    size_t field; /* offsetof(struct vcpu_state, ...) */
} vtx_msrs[] = {
    {VTX_MSR_STAR, offsetof(struct vcpu_state, star)},
    {VTX_MSR_LSTAR, offsetof(struct vcpu_state, lstar)},
    {VTX_MSR_CSTAR, offsetof(struct vcpu_state, cstar)},
    {VTX_MSR_SFMASK, offsetof(struct vcpu_state, sfmask)},
    {VTX_MSR_KERNEL_GS_BASE, offsetof(struct vcpu_state, kernel_gs_base)},
    {VTX_MSR_TSC_AUX, offsetof(struct vcpu_state, tsc_aux)},
    {VTX_MSR_PAT, offsetof(struct vcpu_state, pat)},
    {VTX_MSR_MISC_ENABLE, offsetof(struct vcpu_state, misc_enable)},
    {VTX_MSR_MTRR_DEF_TYPE, offsetof(struct vcpu_state, mtrr_def_type)},
    {VTX_MSR_SYSENTER_CS, offsetof(struct vcpu_state, sysenter_cs)},
    {VTX_MSR_SYSENTER_ESP, offsetof(struct vcpu_state, sysenter_esp)},
    {VTX_MSR_SYSENTER_EIP, offsetof(struct vcpu_state, sysenter_eip)},
};
#define VTX_NMSRS (sizeof(vtx_msrs) / sizeof(vtx_msrs[0]))

static uint64_t *msr_field(struct vcpu_state *s, unsigned i)
{
    return (uint64_t *)((char *)s + vtx_msrs[i].field);
}

/* kvm_msrs ends in a flexible array: header and entries share one buffer */
union vtx_msr_buffer {
    struct kvm_msrs hdr;
    uint8_t bytes[sizeof(struct kvm_msrs) + VTX_NMSRS * sizeof(struct kvm_msr_entry)];
};

/* The buffer for KVM_GET_MSRS / KVM_SET_MSRS over vtx_msrs, indices filled in. */
static struct kvm_msrs *vtx_msrs_prepare(union vtx_msr_buffer *buf)
{
    memset(buf, 0, sizeof(*buf));
    buf->hdr.nmsrs = VTX_NMSRS;
    for (unsigned i = 0; i < VTX_NMSRS; i++)
        buf->hdr.entries[i].index = vtx_msrs[i].index;
    return &buf->hdr;
}

int vtx_state_to_kvm(int vcpu_fd, bool has_xcrs, const struct vcpu_state *in)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    memset(&regs, 0, sizeof(regs));
    regs.rax = in->gpr[X86_RAX];
    regs.rcx = in->gpr[X86_RCX];
    regs.rdx = in->gpr[X86_RDX];
    regs.rbx = in->gpr[X86_RBX];
    regs.rsp = in->gpr[X86_RSP];
    regs.rbp = in->gpr[X86_RBP];
    regs.rsi = in->gpr[X86_RSI];
    regs.rdi = in->gpr[X86_RDI];
    regs.r8 = in->gpr[X86_R8];
    regs.r9 = in->gpr[X86_R9];
    regs.r10 = in->gpr[X86_R10];
    regs.r11 = in->gpr[X86_R11];
    regs.r12 = in->gpr[X86_R12];
    regs.r13 = in->gpr[X86_R13];
    regs.r14 = in->gpr[X86_R14];
    regs.r15 = in->gpr[X86_R15];
    regs.rip = in->rip;
    regs.rflags = in->rflags | 2;
    if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        return -errno;
    seg_to_kvm(&in->cs, &sregs.cs);
    seg_to_kvm(&in->ds, &sregs.ds);
    seg_to_kvm(&in->es, &sregs.es);
    seg_to_kvm(&in->fs, &sregs.fs);
    seg_to_kvm(&in->gs, &sregs.gs);
    seg_to_kvm(&in->ss, &sregs.ss);
    seg_to_kvm(&in->tr, &sregs.tr);
    seg_to_kvm(&in->ldtr, &sregs.ldt);
    sregs.gdt.base = in->gdtr.base;
    sregs.gdt.limit = in->gdtr.limit;
    sregs.idt.base = in->idtr.base;
    sregs.idt.limit = in->idtr.limit;
    sregs.cr0 = in->cr0;
    sregs.cr2 = in->cr2;
    sregs.cr3 = in->cr3;
    sregs.cr4 = in->cr4;
    sregs.cr8 = in->cr8;
    sregs.efer = in->efer;
    sregs.apic_base = in->apic_base;
    if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
        return -errno;
    union vtx_msr_buffer msrs_buf;
    struct kvm_msrs *msrs = vtx_msrs_prepare(&msrs_buf);
    struct vcpu_state copy = *in;
    for (unsigned i = 0; i < VTX_NMSRS; i++)
        msrs->entries[i].data = *msr_field(&copy, i);
    /* KVM_SET_MSRS returns how many entries it set, stopping at the first it refuses. */
    if (ioctl(vcpu_fd, KVM_SET_MSRS, msrs) != (int)VTX_NMSRS)
        return -EINVAL;
    struct kvm_debugregs dbg;
    memset(&dbg, 0, sizeof(dbg));
    memcpy(dbg.db, in->dr, sizeof(dbg.db));
    dbg.dr6 = in->dr[6];
    dbg.dr7 = in->dr[7];
    if (ioctl(vcpu_fd, KVM_SET_DEBUGREGS, &dbg) < 0)
        return -errno;
    if (has_xcrs) {
        /* XCR0 (SDM vol. 1 13.3): bit 0 (x87) must stay set, KVM refuses it otherwise. */
        struct kvm_xcrs xcrs;
        memset(&xcrs, 0, sizeof(xcrs));
        xcrs.nr_xcrs = 1;
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = in->xcr0 | 1;
        if (ioctl(vcpu_fd, KVM_SET_XCRS, &xcrs) < 0)
            return -errno;
    }
    return 0;
}

int vtx_state_from_kvm(int vcpu_fd, bool has_xcrs, struct vcpu_state *out)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    if (ioctl(vcpu_fd, KVM_GET_REGS, &regs) < 0 || ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        return -errno;
    uint64_t *g = out->gpr;
    g[X86_RAX] = regs.rax;
    g[X86_RCX] = regs.rcx;
    g[X86_RDX] = regs.rdx;
    g[X86_RBX] = regs.rbx;
    g[X86_RSP] = regs.rsp;
    g[X86_RBP] = regs.rbp;
    g[X86_RSI] = regs.rsi;
    g[X86_RDI] = regs.rdi;
    g[X86_R8] = regs.r8;
    g[X86_R9] = regs.r9;
    g[X86_R10] = regs.r10;
    g[X86_R11] = regs.r11;
    g[X86_R12] = regs.r12;
    g[X86_R13] = regs.r13;
    g[X86_R14] = regs.r14;
    g[X86_R15] = regs.r15;
    out->rip = regs.rip;
    out->rflags = regs.rflags;
    seg_from_kvm(&sregs.cs, &out->cs);
    seg_from_kvm(&sregs.ds, &out->ds);
    seg_from_kvm(&sregs.es, &out->es);
    seg_from_kvm(&sregs.fs, &out->fs);
    seg_from_kvm(&sregs.gs, &out->gs);
    seg_from_kvm(&sregs.ss, &out->ss);
    seg_from_kvm(&sregs.tr, &out->tr);
    seg_from_kvm(&sregs.ldt, &out->ldtr);
    out->gdtr.base = sregs.gdt.base;
    out->gdtr.limit = sregs.gdt.limit;
    out->idtr.base = sregs.idt.base;
    out->idtr.limit = sregs.idt.limit;
    out->cr0 = sregs.cr0;
    out->cr2 = sregs.cr2;
    out->cr3 = sregs.cr3;
    out->cr4 = sregs.cr4;
    out->cr8 = sregs.cr8;
    out->efer = sregs.efer;
    out->apic_base = sregs.apic_base;
    union vtx_msr_buffer msrs_buf;
    struct kvm_msrs *msrs = vtx_msrs_prepare(&msrs_buf);
    if (ioctl(vcpu_fd, KVM_GET_MSRS, msrs) == (int)VTX_NMSRS)
        for (unsigned i = 0; i < VTX_NMSRS; i++)
            *msr_field(out, i) = msrs->entries[i].data;
    struct kvm_debugregs dbg;
    if (ioctl(vcpu_fd, KVM_GET_DEBUGREGS, &dbg) == 0) {
        memcpy(out->dr, dbg.db, sizeof(dbg.db));
        out->dr[6] = dbg.dr6;
        out->dr[7] = dbg.dr7;
    }
    struct kvm_xcrs xcrs;
    if (has_xcrs && ioctl(vcpu_fd, KVM_GET_XCRS, &xcrs) == 0)
        for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
            if (xcrs.xcrs[i].xcr == 0)
                out->xcr0 = xcrs.xcrs[i].value;
    return 0;
}
