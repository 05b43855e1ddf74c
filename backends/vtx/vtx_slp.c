/* vtx_slp.c - second-level permissions on KVM, for a userspace VMM: memory slots.
 *
 * With nested paging the hardware enforces the second level itself (EPT / NPT entries), but
 * KVM gives a userspace VMM no per-page permissions; what it does give is memory slots. A
 * read-only guest-physical page becomes a slot of its own with KVM_MEM_READONLY: reads run at
 * full speed, a write becomes KVM_EXIT_MMIO (KVM API doc, "KVM_SET_USER_MEMORY_REGION"). A
 * no-access page is left out of the slots: every access becomes KVM_EXIT_MMIO. The RAM around
 * restricted pages is cut into ordinary slots. vtx_vcpu_run turns such an MMIO exit into
 * VM_EXIT_SLP_VIOLATION (without the linear address: KVM does not report it). KVM has already
 * emulated the instruction up to the access and retires it on the next KVM_RUN, so the backend
 * completes the access itself there: a read gets the page's RAM contents, a write is applied
 * to RAM if the page is writable by then (the VMM's run loop lifts the restriction after a
 * violation) - otherwise it is dropped, as a write to read-only memory.
 *
 * #VE is not available: KVM does not let a userspace VMM set the EPT suppress-#VE bit or the
 * virtualization-exception information area.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/guest_layout.h"
#include "vtx.h"

static int set_slot(struct vtx_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, uint32_t flags)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot,
        .flags = flags,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr =
            (uint64_t)(uintptr_t)(vm->common.config.mem->ram + (gpa - GUEST_RAM_BASE))};
    return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

/* Lay RAM out in slots again: ordinary ranges between the restricted pages, one read-only
 * slot per read-only page, nothing for a no-access page. */
static int relayout(struct vtx_vm *vm)
{
    for (uint32_t s = 0; s < vm->slots_used; s++) /* delete (size 0) before resizing */
        set_slot(vm, s, 0, 0, 0);
    uint32_t slot = 0;
    uint64_t cursor = GUEST_RAM_BASE, end = GUEST_RAM_BASE + vm->common.config.mem->ram_size;
    int rc = 0;
    for (unsigned i = 0; i <= vm->slp_count && rc == 0; i++) {
        uint64_t gpa = i < vm->slp_count ? vm->slp[i].gpa : end;
        if (gpa > cursor)
            rc = set_slot(vm, slot++, cursor, gpa - cursor, vm->slot.flags);
        if (rc == 0 && i < vm->slp_count && vm->slp[i].permission == VM_SLP_READ_ONLY)
            rc = set_slot(vm, slot++, gpa, 4096, KVM_MEM_READONLY);
        cursor = gpa + 4096;
    }
    vm->slots_used = slot;
    return rc;
}

int vtx_vm_set_slp(struct vm *v, uint64_t gpa, unsigned permission, bool convertible)
{
    struct vtx_vm *vm = (struct vtx_vm *)v;
    (void)convertible; /* no #VE on KVM: every violation is an exit */
    gpa &= ~0xFFFULL;
    if (!guest_ram_contains(v->config.mem, gpa, 4096) || permission > VM_SLP_NO_ACCESS)
        return -EINVAL;
    if (permission == VM_SLP_READ_ONLY &&
        ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0)
        return -EOPNOTSUPP;
    if (permission != VM_SLP_FULL && (vm->slot.flags & KVM_MEM_LOG_DIRTY_PAGES))
        return -EBUSY; /* the dirty log reads one slot: not both at once */
    unsigned i = 0;
    while (i < vm->slp_count && vm->slp[i].gpa < gpa)
        i++;
    bool present = i < vm->slp_count && vm->slp[i].gpa == gpa;
    if (permission == VM_SLP_FULL) {
        if (!present)
            return 0;
        memmove(&vm->slp[i], &vm->slp[i + 1], (vm->slp_count - i - 1) * sizeof(vm->slp[0]));
        vm->slp_count--;
    } else if (present) {
        vm->slp[i].permission = permission;
    } else {
        if (vm->slp_count == VTX_SLP_MAX)
            return -ENOSPC;
        memmove(&vm->slp[i + 1], &vm->slp[i], (vm->slp_count - i) * sizeof(vm->slp[0]));
        vm->slp[i] = (struct vtx_slp_page){gpa, permission};
        vm->slp_count++;
    }
    return relayout(vm);
}

int vtx_slp_permission(const struct vtx_vm *vm, uint64_t gpa)
{
    for (unsigned i = 0; i < vm->slp_count; i++)
        if (vm->slp[i].gpa == (gpa & ~0xFFFULL))
            return (int)vm->slp[i].permission;
    return VM_SLP_FULL;
}
