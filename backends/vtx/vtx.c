/* vtx.c - the hardware path: Linux KVM on Intel VT-x or AMD-V.
 *
 * The guest runs in VMX non-root mode (AMD: SVM guest mode) at its own ring 0: its CLI, POPF,
 * SGDT, LAR and MOV from CS all execute in hardware against the guest's own state, which is
 * why this backend passes every Popek-Goldberg test trap_emulate fails. The VMCS (AMD: VMCB,
 * Intel SDM vol. 3C ch. 24-25, AMD APM vol. 2 ch. 15) says which guest events cause a VM exit.
 * What happens on a guest `out %al, $0xe9`, step by step:
 *
 *   1. The I/O instruction causes a VM exit (unconditional I/O exiting / the I/O bitmap,
 *      SDM vol. 3C 25.1.3): the CPU saves the guest state in the VMCS and enters root mode,
 *      in the host kernel's KVM.
 *   2. KVM decodes the exit qualification (port, size, direction), finds no in-kernel device
 *      for port 0xE9 and returns from the KVM_RUN ioctl with exit_reason KVM_EXIT_IO, the data
 *      in the shared kvm_run page.
 *   3. vcpu_run() turns that into vmlab's exit record; the VMM's console device prints the
 *      byte; the next KVM_RUN resumes the guest with VMRESUME (VMRUN on AMD).
 *
 * A guest HLT: KVM sets "HLT exiting" in the primary processor-based controls (SDM vol. 3C
 * 24.6.2, table 24-6; the exit: 25.1.3; AMD: HLT intercept, APM vol. 2 15.9); KVM, which
 * with no in-kernel interrupt controller (vmlab creates none) cannot wait for an interrupt
 * itself and returns KVM_EXIT_HLT to user space; run->if_flag says whether the guest halted
 * with interrupts enabled (the VMM then waits for its virtual timer) or disabled (halted).
 *
 * A guest CPUID: exits unconditionally (SDM vol. 3C 25.1.2; AMD: CPUID intercept) but never
 * reaches user space: KVM answers from the table vmlab set with KVM_SET_CPUID2 (vtx_cpuid.c,
 * vmlab's own "vmlabVIRTCPU", the same as on the other backends), advances RIP and resumes.
 *
 * Interrupts: the virtual timer's vectors are injected with KVM_INTERRUPT (VM-entry
 * interruption-information field, SDM vol. 3C 24.8.3; AMD: EVENTINJ, APM vol. 2 15.20) when
 * KVM reports the guest interruptible, else vmlab asks for KVM's interrupt-window exit
 * ("interrupt-window exiting", SDM vol. 3C 25.2; AMD: VINTR intercept). Guest memory is the
 * same memfd the other backends use, registered as memory slot 0 (EPT/NPT map it); the MMIO
 * window has no slot, so an access there is an EPT violation (AMD: nested page fault) that KVM
 * emulates and hands out as KVM_EXIT_MMIO.
 *
 * The budget: the VMM's kick timer sends VMLAB_SIG_KICK to this thread; the handler sets
 * kvm_run->immediate_exit, so KVM_RUN returns -EINTR at once (KVM API doc, "immediate_exit").
 */
#define _GNU_SOURCE
#include "vtx.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/guest_layout.h"

#define VTX_TSS_ADDR 0xfffbd000 /* Intel needs 3 pages for real-mode emulation: outside RAM */

static __thread struct vtx_vcpu *vtx_running;

static int vtx_open_kvm(char *reason, size_t size)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        struct stat st;
        if (reason && err == EACCES && stat("/dev/kvm", &st) == 0) {
            /* A student account on a lab machine: say how to get access (docs/LABS.md). */
            struct group *gr = getgrgid(st.st_gid);
            snprintf(reason, size,
                     "/dev/kvm permission denied (mode %04o, group %s): ask an admin to add you "
                     "to its group, with mode 0660 group kvm (udev rule, docs/LABS.md)",
                     (unsigned)(st.st_mode & 07777), gr ? gr->gr_name : "?");
        } else if (reason) {
            snprintf(reason, size, "/dev/kvm %s",
                     err == ENOENT   ? "not present"
                     : err == EACCES ? "permission denied"
                                     : strerror(err));
        }
        return -err;
    }
    int api = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        if (reason)
            snprintf(reason, size, "KVM API version %d, vmlab needs %d", api, KVM_API_VERSION);
        close(fd);
        return -ENOTSUP;
    }
    static const struct {
        int cap;
        const char *name;
    } needed[] = {{KVM_CAP_USER_MEMORY, "USER_MEMORY"},
                  {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"},
                  {KVM_CAP_EXT_CPUID, "EXT_CPUID"},
                  {KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR"}};
    for (unsigned i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
        if (ioctl(fd, KVM_CHECK_EXTENSION, needed[i].cap) <= 0) {
            if (reason)
                snprintf(reason, size, "KVM lacks KVM_CAP_%s", needed[i].name);
            close(fd);
            return -ENOTSUP;
        }
    return fd;
}

static int vtx_probe(char *reason, size_t size)
{
    int fd = vtx_open_kvm(reason, size);
    if (fd < 0)
        return fd;
    close(fd);
    if (size)
        reason[0] = 0;
    return 0;
}

/* Linux KVM can be backed by PVM (kvm_pvm, "pagetable-based virtual machine"): a software
 * hypervisor that runs the guest deprivileged and emulates what would trap, for nested clouds
 * without hardware virtualization. It is KVM's API, but not VT-x/AMD-V underneath. */
static bool vtx_is_pvm(void)
{
    return access("/sys/module/kvm_pvm", F_OK) == 0;
}

/* The CPU under this KVM is QEMU's TCG (the nested test: scripts/nested-kvm/): the hypervisor
 * leaf (CPUID 0x40000000, present when CPUID.1:ECX[31] is set) carries QEMU's "TCGTCGTCGTCG".
 * A few guests meet TCG's own deviations from the architecture there; their expectations name
 * this condition, so a real kvm_amd/kvm_intel host still judges them strictly. */
static bool vtx_cpu_is_qemu_tcg(void)
{
    unsigned a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (!(c & (1u << 31)))
        return false;
    char sig[13];
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x40000000), "c"(0));
    memcpy(sig, &b, 4);
    memcpy(sig + 4, &c, 4);
    memcpy(sig + 8, &d, 4);
    sig[12] = 0;
    return strcmp(sig, "TCGTCGTCGTCG") == 0;
}

static bool vtx_host_has(const char *cond)
{
    if (strcmp(cond, "kvm_pvm") == 0)
        return vtx_is_pvm();
    if (strcmp(cond, "kvm_amd") == 0)
        return access("/sys/module/kvm_amd", F_OK) == 0;
    if (strcmp(cond, "qemu_tcg") == 0)
        return vtx_cpu_is_qemu_tcg();
    return false;
}

static void vtx_describe_host(char *buf, size_t size)
{
    int fd = vtx_open_kvm(NULL, 0);
    if (fd < 0) {
        snprintf(buf, size, "no /dev/kvm");
        return;
    }
    int stats = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD);
    int dirty_ring = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
    if (vtx_is_pvm()) {
        snprintf(buf, size,
                 "KVM API %d, binary stats %s, dirty ring %s\n"
                 "KVM flavor: kvm_pvm (PVM, software virtualization: NOT VT-x/AMD-V; guests run "
                 "deprivileged and KVM emulates, so some instructions fail to emulate)",
                 KVM_API_VERSION, stats > 0 ? "yes" : "no", dirty_ring > 0 ? "yes" : "no");
        close(fd);
        return;
    }
    FILE *f = fopen("/sys/module/kvm_intel/parameters/ept", "r");
    const char *mmu = "KVM flavor unknown (no kvm_intel/kvm_amd parameters)";
    char ept = '?';
    if (f) {
        mmu = "kvm_intel EPT";
        if (fscanf(f, " %c", &ept) != 1)
            ept = '?';
        fclose(f);
    } else if ((f = fopen("/sys/module/kvm_amd/parameters/npt", "r"))) {
        mmu = "kvm_amd NPT";
        if (fscanf(f, " %c", &ept) != 1)
            ept = '?';
        fclose(f);
    }
    snprintf(buf, size,
             "KVM API %d, binary stats %s, dirty ring %s\n%s: %c (two-dimensional paging; "
             "'N' means shadow page tables)",
             KVM_API_VERSION, stats > 0 ? "yes" : "no", dirty_ring > 0 ? "yes" : "no", mmu, ept);
    close(fd);
}

static int vtx_vm_create(const struct vm_config *config, struct vm **out)
{
    struct vtx_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return -ENOMEM;
    vm->common.ops = &vtx_backend_ops;
    vm->common.config = *config;
    int rc;
    vm->kvm_fd = vtx_open_kvm(NULL, 0);
    if (vm->kvm_fd < 0) {
        rc = vm->kvm_fd;
        goto fail;
    }
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) {
        rc = -errno;
        goto fail_kvm;
    }
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, VTX_TSS_ADDR) < 0) {
        rc = -errno;
        goto fail_vm;
    }
    vm->has_xcrs = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
    vm->stats_fd = -1;
    if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) > 0)
        vm->stats_fd = ioctl(vm->vm_fd, KVM_GET_STATS_FD, NULL);
    vm->slot.slot = 0;
    vm->slot.guest_phys_addr = GUEST_RAM_BASE;
    vm->slot.memory_size = config->mem->ram_size;
    vm->slot.userspace_addr = (uint64_t)(uintptr_t)config->mem->ram;
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &vm->slot) < 0) {
        rc = -errno;
        goto fail_vm;
    }
    vm->slots_used = 1;
    *out = &vm->common;
    return 0;
fail_vm:
    if (vm->stats_fd >= 0)
        close(vm->stats_fd);
    close(vm->vm_fd);
fail_kvm:
    close(vm->kvm_fd);
fail:
    free(vm);
    return rc;
}

static void vtx_vm_destroy(struct vm *v)
{
    struct vtx_vm *vm = (struct vtx_vm *)v;
    if (vm->stats_fd >= 0)
        close(vm->stats_fd);
    close(vm->vm_fd);
    close(vm->kvm_fd);
    free(vm);
}

/* Async-signal-safe: two stores. The thread-local pointer selects the vCPU this thread runs,
 * so a kick meant for one vCPU thread never touches another's kvm_run. */
static void vtx_kick_handler(int sig, siginfo_t *info, void *uctx)
{
    (void)sig;
    (void)info;
    (void)uctx;
    struct vtx_vcpu *v = vtx_running;
    if (v) {
        v->run->immediate_exit = 1; /* KVM_RUN returns -EINTR instead of entering */
        v->common.kick_pending = 1;
    }
}

static int vtx_vcpu_create(struct vm *vmc, struct vcpu **out)
{
    struct vtx_vm *vm = (struct vtx_vm *)vmc;
    struct vtx_vcpu *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->common.vm = vmc;
    v->stats_fd = -1;
    int rc;
    v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
    if (v->fd < 0) {
        rc = -errno;
        goto fail;
    }
    int size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0) {
        rc = -EINVAL;
        goto fail_fd;
    }
    v->run_size = (size_t)size;
    v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        rc = -errno;
        goto fail_fd;
    }
    rc = vtx_cpuid_set(v->fd);
    if (rc < 0)
        goto fail_map;
    if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) > 0)
        v->stats_fd = ioctl(v->fd, KVM_GET_STATS_FD, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = vtx_kick_handler;
    sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: KVM_RUN must come back with EINTR */
    sigemptyset(&sa.sa_mask);
    if (sigaction(VMLAB_SIG_KICK, &sa, &v->old_kick) < 0) {
        rc = -errno;
        goto fail_map;
    }
    vtx_running = v;
    *out = &v->common;
    return 0;
fail_map:
    munmap(v->run, v->run_size);
fail_fd:
    close(v->fd);
fail:
    free(v);
    return rc;
}

static void vtx_vcpu_destroy(struct vcpu *vc)
{
    struct vtx_vcpu *v = (struct vtx_vcpu *)vc;
    sigaction(VMLAB_SIG_KICK, &v->old_kick, NULL);
    if (vtx_running == v)
        vtx_running = NULL;
    if (v->stats_fd >= 0)
        close(v->stats_fd);
    munmap(v->run, v->run_size);
    close(v->fd);
    free(v);
}

static int vtx_vcpu_get_state(struct vcpu *vc, struct vcpu_state *out)
{
    memset(out, 0, sizeof(*out));
    return vtx_state_from_kvm(((struct vtx_vcpu *)vc)->fd, ((struct vtx_vm *)vc->vm)->has_xcrs,
                              out);
}

static int vtx_vcpu_set_state(struct vcpu *vc, const struct vcpu_state *in)
{
    return vtx_state_to_kvm(((struct vtx_vcpu *)vc)->fd, ((struct vtx_vm *)vc->vm)->has_xcrs, in);
}

static int vtx_vcpu_inject_interrupt(struct vcpu *vc, uint8_t vector)
{
    struct vtx_vcpu *v = (struct vtx_vcpu *)vc;
    if (!v->run->ready_for_interrupt_injection || !v->run->if_flag)
        return -EBUSY;
    struct kvm_interrupt irq = {.irq = vector};
    return ioctl(v->fd, KVM_INTERRUPT, &irq) < 0 ? -errno : 0;
}

static const char *internal_suberror_name(uint32_t sub)
{
    switch (sub) {
    case KVM_INTERNAL_ERROR_EMULATION:
        return "KVM could not emulate an instruction";
    case KVM_INTERNAL_ERROR_SIMUL_EX:
        return "exception while delivering an exception";
    case KVM_INTERNAL_ERROR_DELIVERY_EV:
        return "exit while delivering an event";
    default:
        return "KVM internal error";
    }
}

static void fill_rip(struct vtx_vcpu *v, struct vm_exit *exit)
{
    struct kvm_regs regs;
    if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
        exit->rip = regs.rip;
}

static int vtx_vcpu_run(struct vcpu *vc, struct vm_exit *exit)
{
    struct vtx_vcpu *v = (struct vtx_vcpu *)vc;
    struct kvm_run *run = v->run;
    if (v->pending_in) {
        size_t n = (size_t)run->io.size * run->io.count;
        memcpy((uint8_t *)run + run->io.data_offset, exit->io.data,
               n <= VM_EXIT_IO_DATA_MAX ? n : VM_EXIT_IO_DATA_MAX);
        v->pending_in = false;
    }
    if (v->pending_mmio_read) {
        memcpy(run->mmio.data, exit->mmio.data, sizeof(run->mmio.data));
        v->pending_mmio_read = false;
    }
    if (v->pending_slp) { /* complete the access KVM emulated (vtx_slp.c) */
        const struct guest_memory *mem = vc->vm->config.mem;
        if (!v->slp_write)
            guest_ram_read(mem, v->slp_gpa, run->mmio.data, v->slp_len);
        else if (vtx_slp_permission((struct vtx_vm *)vc->vm, v->slp_gpa) == VM_SLP_FULL)
            guest_ram_write(mem, v->slp_gpa, v->slp_data, v->slp_len);
        v->pending_slp = false;
    }
    memset(exit, 0, offsetof(struct vm_exit, io));
    vtx_running = v;
    run->request_interrupt_window = vc->request_interrupt_window;
    run->immediate_exit = vc->kick_pending ? 1 : 0;
    if (ioctl(v->fd, KVM_RUN, 0) < 0) {
        int err = errno;
        run->immediate_exit = 0;
        if (err == EINTR || err == EAGAIN) {
            /* A signal (the kick) arrived before or during the run; the VMM's loop counts
             * exits in vcpu->stats and checks its deadline on VM_EXIT_INTR. */
            exit->reason = VM_EXIT_INTR;
            return 0;
        }
        return -err;
    }
    run->immediate_exit = 0;
    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
        exit->reason = VM_EXIT_IO;
        exit->io.direction = run->io.direction == KVM_EXIT_IO_OUT ? VM_IO_OUT : VM_IO_IN;
        exit->io.size = run->io.size;
        exit->io.port = run->io.port;
        exit->io.count = run->io.count;
        /* REP INS/OUTS: KVM hands over up to one page of data per exit (its pio_data page,
         * KVM API doc "KVM_EXIT_IO"), so count * size fits vmlab's 4 KiB record; the check
         * guards against a kernel with a larger page rather than truncating silently. */
        size_t n = (size_t)run->io.size * run->io.count;
        if (n > VM_EXIT_IO_DATA_MAX) {
            exit->reason = VM_EXIT_INTERNAL_ERROR;
            exit->internal.suberror = VM_INTERNAL_IO_TOO_LARGE;
            snprintf(exit->internal.message, sizeof(exit->internal.message),
                     "string I/O of %zu bytes exceeds vmlab's %d-byte I/O record", n,
                     VM_EXIT_IO_DATA_MAX);
            break;
        }
        if (exit->io.direction == VM_IO_OUT)
            memcpy(exit->io.data, (uint8_t *)run + run->io.data_offset, n);
        else
            v->pending_in = true;
        if (vc->trace)
            fill_rip(v, exit);
        return 0;
    }
    case KVM_EXIT_MMIO:
        if (guest_ram_contains(vc->vm->config.mem, run->mmio.phys_addr, run->mmio.len) &&
            run->mmio.len <= sizeof(v->slp_data)) {
            /* RAM that a second-level permission took out of the slots (vtx_slp.c) */
            exit->reason = VM_EXIT_SLP_VIOLATION;
            exit->slp.gpa = run->mmio.phys_addr;
            exit->slp.access = run->mmio.is_write ? VM_SLP_WRITE : VM_SLP_READ;
            exit->slp.gla_valid = 0;
            v->pending_slp = true;
            v->slp_gpa = run->mmio.phys_addr;
            v->slp_len = run->mmio.len;
            v->slp_write = run->mmio.is_write;
            memcpy(v->slp_data, run->mmio.data, run->mmio.len);
            break;
        }
        exit->reason = VM_EXIT_MMIO;
        exit->mmio.gpa = run->mmio.phys_addr;
        exit->mmio.len = run->mmio.len;
        exit->mmio.is_write = run->mmio.is_write;
        memcpy(exit->mmio.data, run->mmio.data, sizeof(exit->mmio.data));
        v->pending_mmio_read = !run->mmio.is_write;
        break;
    case KVM_EXIT_HLT:
        exit->reason = VM_EXIT_HLT;
        exit->hlt.interrupts_enabled = run->if_flag;
        break;
    case KVM_EXIT_IRQ_WINDOW_OPEN:
        exit->reason = VM_EXIT_IRQ_WINDOW_OPEN;
        return 0;
    case KVM_EXIT_INTR:
        exit->reason = VM_EXIT_INTR;
        return 0;
    case KVM_EXIT_SET_TPR:
        /* A CR8 write with no in-kernel local APIC: KVM keeps the value in run->cr8 and loads
         * it again on the next KVM_RUN; nothing for vmlab to do. */
        exit->reason = VM_EXIT_NONE;
        return 0;
    case KVM_EXIT_SHUTDOWN:
        exit->reason = VM_EXIT_SHUTDOWN;
        break;
    case KVM_EXIT_FAIL_ENTRY:
        exit->reason = VM_EXIT_FAIL_ENTRY;
        exit->fail_entry.hardware_entry_failure_reason =
            run->fail_entry.hardware_entry_failure_reason;
        snprintf(exit->internal.message, sizeof(exit->internal.message),
                 "VM entry failed: hardware reason %#llx (Intel: basic exit reason 33/34 = "
                 "invalid guest state/MSR loading, SDM vol. 3C 26.8)",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        exit->reason = VM_EXIT_INTERNAL_ERROR;
        exit->internal.suberror = run->internal.suberror;
        snprintf(exit->internal.message, sizeof(exit->internal.message), "%s (suberror %u)",
                 internal_suberror_name(run->internal.suberror), run->internal.suberror);
        break;
    default:
        exit->reason = VM_EXIT_INTERNAL_ERROR;
        exit->internal.suberror = VM_INTERNAL_KVM_EXIT;
        snprintf(exit->internal.message, sizeof(exit->internal.message),
                 "unexpected KVM exit reason %u", run->exit_reason);
        break;
    }
    fill_rip(v, exit);
    return 0;
}

static int vtx_vcpu_stats(struct vcpu *vc,
                          void (*emit)(void *, const char *, uint64_t, const char *), void *ctx)
{
    struct vtx_vcpu *v = (struct vtx_vcpu *)vc;
    struct vtx_vm *vm = (struct vtx_vm *)vc->vm;
    if (v->stats_fd < 0)
        return -EOPNOTSUPP;
    int rc = vtx_stats_emit(v->stats_fd, "kvm.", emit, ctx);
    /* VM-wide counters (MMU, TLB flushes) follow the vCPU's exits, io_exits, halt_exits... */
    if (rc == 0 && vm->stats_fd >= 0)
        rc = vtx_stats_emit(vm->stats_fd, "kvm.vm.", emit, ctx);
    return rc;
}

static int vtx_vm_enable_dirty_log(struct vm *vmc, bool on)
{
    struct vtx_vm *vm = (struct vtx_vm *)vmc;
    if (vm->slp_count) /* RAM is cut into several slots (vtx_slp.c); the log reads one */
        return -EBUSY;
    vm->slot.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0;
    return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &vm->slot) < 0 ? -errno : 0;
}

static int vtx_vm_get_dirty_log(struct vm *vmc, uint64_t *bitmap, size_t words)
{
    struct vtx_vm *vm = (struct vtx_vm *)vmc;
    if (!(vm->slot.flags & KVM_MEM_LOG_DIRTY_PAGES))
        return -EINVAL;
    if (words * 64 < vm->slot.memory_size / 4096)
        return -ENOSPC;
    struct kvm_dirty_log log = {.slot = 0, .dirty_bitmap = bitmap};
    return ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0 ? -errno : 0;
}

const struct backend_ops vtx_backend_ops = {
    .name = "vtx",
    .summary = "KVM (Intel VT-x / AMD-V): the guest runs in non-root mode at its own ring 0; "
               "sensitive instructions cause VM exits",
    .memory_flags = 0,
    .probe = vtx_probe,
    .describe_host = vtx_describe_host,
    .host_has = vtx_host_has,
    .vm_create = vtx_vm_create,
    .vm_destroy = vtx_vm_destroy,
    .vcpu_create = vtx_vcpu_create,
    .vcpu_destroy = vtx_vcpu_destroy,
    .vcpu_get_state = vtx_vcpu_get_state,
    .vcpu_set_state = vtx_vcpu_set_state,
    .vcpu_run = vtx_vcpu_run,
    .vcpu_inject_interrupt = vtx_vcpu_inject_interrupt,
    .vcpu_stats = vtx_vcpu_stats,
    .vm_get_dirty_log = vtx_vm_get_dirty_log,
    .vm_enable_dirty_log = vtx_vm_enable_dirty_log,
    .vm_set_slp = vtx_vm_set_slp,
};
