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
};

struct vtx_vcpu {
    struct vcpu common;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    int stats_fd; /* KVM_GET_STATS_FD, or -1 */
    bool pending_in, pending_mmio_read;
    struct sigaction old_kick;
};

int vtx_state_to_kvm(int vcpu_fd, bool has_xcrs, const struct vcpu_state *in);
int vtx_state_from_kvm(int vcpu_fd, bool has_xcrs, struct vcpu_state *out);
/* Emit every non-zero counter of a KVM binary-stats fd as "<prefix><name>". */
int vtx_stats_emit(int stats_fd, const char *prefix,
                   void (*emit)(void *, const char *, uint64_t, const char *), void *ctx);
/* KVM_SET_CPUID2 with vmlab's virtual CPU (emu_cpuid_leaves/emu_cpuid). */
int vtx_cpuid_set(int vcpu_fd);

#endif
