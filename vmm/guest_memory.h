/* guest_memory.h - guest RAM: one memfd, mapped twice.
 *
 *   ram     the guest-PHYSICAL view, anywhere in the host: the VMM, the loader, the devices,
 *           the emulation core and KVM (its memory slot) read and write guest memory here,
 *           by guest-physical address (guest_ram_*).
 *   window  (GUEST_MEMORY_FIXED only) the guest-VIRTUAL view for the in-process backends,
 *           where trap_emulate runs guest code natively and dbt's translated code accesses
 *           memory: the 512 MiB guest space reserved at GUEST_SPACE_BASE with
 *           MAP_FIXED_NOREPLACE, so guest-virtual == host-virtual there. It starts as an
 *           identity view of RAM (PROT_NONE beyond it); a shadow MMU that attaches to it
 *           empties it and from then on maps into it what the guest's page tables say
 *           (mmu/shadow_mmu.h). Only one window can exist in a process at a time.
 */
#ifndef VMLAB_GUEST_MEMORY_H
#define VMLAB_GUEST_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_layout.h"

struct guest_memory {
    int memfd;
    uint8_t *ram;      /* host address of guest-physical GUEST_RAM_BASE (never executable) */
    uint64_t ram_size; /* GUEST_RAM_SIZE */
    bool fixed;        /* the window at GUEST_SPACE_BASE is reserved */
    bool executable;   /* guest code may run natively from the window (trap_emulate) */
};

enum guest_memory_flags {
    GUEST_MEMORY_FIXED = 1 << 0,      /* reserve the guest-virtual window at GUEST_SPACE_BASE */
    GUEST_MEMORY_EXECUTABLE = 1 << 1, /* the window may be executable (native execution) */
};

/* 0, or -EBUSY (window already taken in this process), -ENOMEM, -errno of memfd/mmap. */
int guest_memory_create(unsigned flags, struct guest_memory **out);
void guest_memory_destroy(struct guest_memory *mem);

static inline bool guest_ram_contains(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
    return gpa >= GUEST_RAM_BASE && len <= mem->ram_size &&
           gpa - GUEST_RAM_BASE <= mem->ram_size - len;
}

/* Host pointer for a guest-physical address range inside RAM, or NULL. */
static inline void *guest_ram_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
    return guest_ram_contains(mem, gpa, len) ? mem->ram + (gpa - GUEST_RAM_BASE) : NULL;
}

/* Copy to/from guest RAM: 0, or -EFAULT when any byte lies outside RAM. Async-signal-safe. */
int guest_ram_read(const struct guest_memory *mem, uint64_t gpa, void *dst, uint64_t len);
int guest_ram_write(const struct guest_memory *mem, uint64_t gpa, const void *src, uint64_t len);

#endif
