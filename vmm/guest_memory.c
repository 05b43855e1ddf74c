/* guest_memory.c - guest RAM as a memfd: a guest-physical view, and optionally the fixed
 * guest-virtual window (see guest_memory.h).
 *
 * The memfd (rather than anonymous memory) is what lets the same pages appear twice, and at
 * any guest-virtual address the shadow MMU chooses, and hands KVM exactly the pages the
 * in-process backends use.
 */
#define _GNU_SOURCE
#include "guest_memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static int reserve_guest_space(void)
{
    void *want = (void *)(uintptr_t)GUEST_SPACE_BASE;
    void *got = mmap(want, GUEST_SPACE_SIZE, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (got == MAP_FAILED)
        return errno == EEXIST ? -EBUSY : -errno;
    if (got != want) { /* a kernel without MAP_FIXED_NOREPLACE treats it as a hint */
        munmap(got, GUEST_SPACE_SIZE);
        return -EBUSY;
    }
    return 0;
}

int guest_memory_create(unsigned flags, struct guest_memory **out)
{
    struct guest_memory *mem = calloc(1, sizeof(*mem));
    if (!mem)
        return -ENOMEM;
    mem->ram_size = GUEST_RAM_SIZE;
    mem->fixed = flags & GUEST_MEMORY_FIXED;
    mem->executable = flags & GUEST_MEMORY_EXECUTABLE;
    mem->memfd = memfd_create("vmlab-guest-ram", MFD_CLOEXEC);
    int err;
    if (mem->memfd < 0) {
        err = -errno;
        goto fail_free;
    }
    if (ftruncate(mem->memfd, (off_t)mem->ram_size) < 0) {
        err = -errno;
        goto fail_close;
    }
    void *ram = mmap(NULL, mem->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, mem->memfd, 0);
    if (ram == MAP_FAILED) {
        err = -errno;
        goto fail_close;
    }
    mem->ram = ram;
    if (mem->fixed) {
        err = reserve_guest_space();
        if (err == 0) {
            /* the initial identity view of RAM (the platform's page tables say the same) */
            int prot = PROT_READ | PROT_WRITE | (mem->executable ? PROT_EXEC : 0);
            void *view = mmap((void *)(uintptr_t)GUEST_RAM_BASE, mem->ram_size, prot,
                              MAP_SHARED | MAP_FIXED, mem->memfd, 0);
            if (view == MAP_FAILED) {
                err = -errno;
                munmap((void *)(uintptr_t)GUEST_SPACE_BASE, GUEST_SPACE_SIZE);
            }
        }
        if (err) {
            munmap(ram, mem->ram_size);
            goto fail_close;
        }
    }
    *out = mem;
    return 0;
fail_close:
    close(mem->memfd);
fail_free:
    free(mem);
    return err;
}

void guest_memory_destroy(struct guest_memory *mem)
{
    if (!mem)
        return;
    if (mem->fixed)
        munmap((void *)(uintptr_t)GUEST_SPACE_BASE, GUEST_SPACE_SIZE);
    munmap(mem->ram, mem->ram_size);
    close(mem->memfd);
    free(mem);
}

int guest_ram_read(const struct guest_memory *mem, uint64_t gpa, void *dst, uint64_t len)
{
    const void *src = guest_ram_ptr(mem, gpa, len);
    if (!src)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}

int guest_ram_write(const struct guest_memory *mem, uint64_t gpa, const void *src, uint64_t len)
{
    void *dst = guest_ram_ptr(mem, gpa, len);
    if (!dst)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}
