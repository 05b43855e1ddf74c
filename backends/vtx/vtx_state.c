/* vtx_state.c - struct vcpu_state <-> KVM's register structures.
 *
 * Segment attributes are kept in the VMCS access-rights layout (Intel SDM vol. 3C 24.4.1),
 * which maps one-to-one onto struct kvm_segment's fields.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vtx.h"

static void seg_to_kvm(const struct x86_segment *s, struct kvm_segment *k)
{
    memset(k, 0, sizeof(*k));
    k->base = s->base;
    k->limit = s->limit;
    k->selector = s->selector;
    k->type = s->attrib & 0xF;
    k->s = (s->attrib >> 4) & 1;
    k->dpl = (s->attrib >> 5) & 3;
    k->present = (s->attrib >> 7) & 1;
    k->avl = (s->attrib >> 12) & 1;
    k->l = (s->attrib >> 13) & 1;
    k->db = (s->attrib >> 14) & 1;
    k->g = (s->attrib >> 15) & 1;
    k->unusable = !k->present;
}

static void seg_from_kvm(const struct kvm_segment *k, struct x86_segment *s)
{
    s->base = k->base;
    s->limit = k->limit;
    s->selector = k->selector;
    s->attrib = (uint16_t)((k->type & 0xF) | (k->s << 4) | (k->dpl << 5) |
                           ((k->present && !k->unusable) << 7) | (k->avl << 12) | (k->l << 13) |
                           (k->db << 14) | (k->g << 15));
}

/* MSRs vmlab's state carries beyond the special registers (SDM vol. 4). */
static const uint32_t vtx_msr_index[] = {
    0xC0000081, 0xC0000082, 0xC0000083, 0xC0000084, 0xC0000102,
    0xC0000103, 0x277,      0x174,      0x175,      0x176,
};
#define VTX_NMSRS (sizeof(vtx_msr_index) / sizeof(vtx_msr_index[0]))

static uint64_t *msr_field(struct vcpu_state *s, uint32_t index)
{
    switch (index) {
    case 0xC0000081:
        return &s->star;
    case 0xC0000082:
        return &s->lstar;
    case 0xC0000083:
        return &s->cstar;
    case 0xC0000084:
        return &s->sfmask;
    case 0xC0000102:
        return &s->kernel_gs_base;
    case 0xC0000103:
        return &s->tsc_aux;
    case 0x277:
        return &s->pat;
    case 0x174:
        return &s->sysenter_cs;
    case 0x175:
        return &s->sysenter_esp;
    default:
        return &s->sysenter_eip;
    }
}

int vtx_state_to_kvm(int vcpu_fd, const struct vcpu_state *in)
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
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[VTX_NMSRS];
    } msrs;
    memset(&msrs, 0, sizeof(msrs));
    msrs.hdr.nmsrs = VTX_NMSRS;
    struct vcpu_state copy = *in;
    for (unsigned i = 0; i < VTX_NMSRS; i++) {
        msrs.e[i].index = vtx_msr_index[i];
        msrs.e[i].data = *msr_field(&copy, vtx_msr_index[i]);
    }
    if (ioctl(vcpu_fd, KVM_SET_MSRS, &msrs) != (int)VTX_NMSRS)
        return -EINVAL;
    struct kvm_debugregs dbg;
    memset(&dbg, 0, sizeof(dbg));
    memcpy(dbg.db, in->dr, sizeof(dbg.db));
    dbg.dr6 = in->dr[6];
    dbg.dr7 = in->dr[7];
    if (ioctl(vcpu_fd, KVM_SET_DEBUGREGS, &dbg) < 0)
        return -errno;
    return 0;
}

int vtx_state_from_kvm(int vcpu_fd, struct vcpu_state *out)
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
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[VTX_NMSRS];
    } msrs;
    memset(&msrs, 0, sizeof(msrs));
    msrs.hdr.nmsrs = VTX_NMSRS;
    for (unsigned i = 0; i < VTX_NMSRS; i++)
        msrs.e[i].index = vtx_msr_index[i];
    if (ioctl(vcpu_fd, KVM_GET_MSRS, &msrs) == (int)VTX_NMSRS)
        for (unsigned i = 0; i < VTX_NMSRS; i++)
            *msr_field(out, vtx_msr_index[i]) = msrs.e[i].data;
    struct kvm_debugregs dbg;
    if (ioctl(vcpu_fd, KVM_GET_DEBUGREGS, &dbg) == 0) {
        memcpy(out->dr, dbg.db, sizeof(dbg.db));
        out->dr[6] = dbg.dr6;
        out->dr[7] = dbg.dr7;
    }
    return 0;
}
