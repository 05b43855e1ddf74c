/* vtx_cpuid.c - vmlab's virtual CPU for KVM.
 *
 * CPUID exits unconditionally in VMX non-root mode (SDM vol. 3C 25.1.2; AMD: the CPUID
 * intercept, APM vol. 2 15.9) and KVM answers it in the kernel from the table set with
 * KVM_SET_CPUID2. vmlab fills that table from the emulation core, so a guest sees the same
 * "vmlabVIRTCPU" leaves on vtx as on trap_emulate and dbt.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vtx.h"

#define VTX_CPUID_MAX 64

int vtx_cpuid_set(int vcpu_fd)
{
    uint32_t leaves[VTX_CPUID_MAX][2];
    unsigned n = emu_cpuid_leaves(leaves, VTX_CPUID_MAX);
    if (n == VTX_CPUID_MAX) /* emu_cpuid_leaves clamps: a full table may be a truncated one */
        return -E2BIG;
    /* kvm_cpuid2 ends in a flexible array: header and entries share one buffer */
    union {
        struct kvm_cpuid2 hdr;
        uint8_t bytes[sizeof(struct kvm_cpuid2) + VTX_CPUID_MAX * sizeof(struct kvm_cpuid_entry2)];
    } buf;
    memset(&buf, 0, sizeof(buf));
    struct kvm_cpuid2 *c = &buf.hdr;
    c->nent = n;
    struct vcpu_state reset; /* emu_cpuid ignores the state: no OSXSAVE/APIC-ID mirror */
    memset(&reset, 0, sizeof(reset));
    for (unsigned i = 0; i < n; i++) {
        uint32_t r[4];
        emu_cpuid(&reset, leaves[i][0], leaves[i][1], r);
        c->entries[i].function = leaves[i][0];
        c->entries[i].index = leaves[i][1];
        c->entries[i].eax = r[0];
        c->entries[i].ebx = r[1];
        c->entries[i].ecx = r[2];
        c->entries[i].edx = r[3];
        if (leaves[i][0] == 7) /* subleaf-indexed: other subleaves of 7 read as zero */
            c->entries[i].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    }
    return ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
}
