/* guest_memory.h - guest RAM: one memfd, mapped at the fixed window for in-process backends.
 *
 * For trap_emulate and dbt the guest runs inside the host process, so guest-virtual must equal
 * host-virtual: the whole 1 GiB guest space is reserved at GUEST_SPACE_BASE with
 * MAP_FIXED_NOREPLACE (PROT_NONE, so stray accesses fault instead of touching host memory) and
 * RAM is the memfd mapped over its start. Only one such window can exist in a process at a time
 * (a direct consequence of GVA == HVA). vtx does not need the fixed address and may ask for a
 * mapping anywhere; KVM receives the same memfd-backed pages as a memory slot.
 */
#ifndef VMLAB_GUEST_MEMORY_H
#define VMLAB_GUEST_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_layout.h"

struct guest_memory {
    int memfd;
    uint8_t *ram;      /* host address of GUEST_RAM_BASE */
    uint64_t ram_size; /* GUEST_RAM_SIZE */
    bool fixed;        /* ram == (uint8_t *)GUEST_RAM_BASE */
    bool executable;   /* RAM mapped PROT_EXEC (trap_emulate runs it natively) */
};

enum guest_memory_flags {
    GUEST_MEMORY_FIXED = 1 << 0,      /* reserve the 1 GiB window at GUEST_SPACE_BASE */
    GUEST_MEMORY_EXECUTABLE = 1 << 1, /* map RAM read/write/execute (native execution) */
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
