/* vtx.h - internals of the vtx (KVM) backend. */
#ifndef VMLAB_VTX_H
#define VMLAB_VTX_H

#include <linux/kvm.h>
#include <signal.h>
#include <stdbool.h>

#include "emu/emu.h"
#include "vmm/backend.h"

struct vtx_vm {
    struct vm common;
    int kvm_fd, vm_fd;
    int stats_fd;  /* KVM_GET_STATS_FD on the VM, or -1 */
    bool has_xcrs; /* KVM_CAP_XCRS: XCR0 travels with the state */
    struct kvm_userspace_memory_region slot;
    /* second-level permissions (vtx_slp.c): restricted pages, sorted, and the slots in use */
#define VTX_SLP_MAX 64
    struct vtx_slp_page {
        uint64_t gpa;
        unsigned permission; /* enum vm_slp_permission */
    } slp[VTX_SLP_MAX];
    unsigned slp_count;
    uint32_t slots_used;
};

struct vtx_vcpu {
    struct vcpu common;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    int stats_fd; /* KVM_GET_STATS_FD, or -1 */
    bool pending_in, pending_mmio_read;
    /* a second-level violation KVM emulated up to the access: completed on the next run */
    bool pending_slp;
    uint64_t slp_gpa;
    uint32_t slp_len;
    bool slp_write;
    uint8_t slp_data[8];
    struct sigaction old_kick;
};

int vtx_state_to_kvm(int vcpu_fd, bool has_xcrs, const struct vcpu_state *in);
int vtx_state_from_kvm(int vcpu_fd, bool has_xcrs, struct vcpu_state *out);
/* Emit every non-zero counter of a KVM binary-stats fd as "<prefix><name>". */
int vtx_stats_emit(int stats_fd, const char *prefix,
                   void (*emit)(void *, const char *, uint64_t, const char *), void *ctx);
/* vtx_slp.c: second-level permissions as memory slots; the permission of a page. */
int vtx_vm_set_slp(struct vm *vm, uint64_t gpa, unsigned permission, bool convertible);
int vtx_slp_permission(const struct vtx_vm *vm, uint64_t gpa);
/* KVM_SET_CPUID2 with vmlab's virtual CPU (emu_cpuid_leaves/emu_cpuid). */
int vtx_cpuid_set(int vcpu_fd);

#endif
