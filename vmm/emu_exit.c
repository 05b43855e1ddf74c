/* emu_exit.c - see emu_exit.h. */
#include "emu_exit.h"

#include <string.h>

void emu_exit_fill_io(struct vm_exit *e, const struct emu_io *io)
{
    e->io.direction = io->direction;
    e->io.size = io->size;
    e->io.port = io->port;
    e->io.count = io->count ? io->count : 1;
    if (io->direction == VM_IO_OUT) {
        size_t n = (size_t)e->io.count * e->io.size;
        memcpy(e->io.data, io->data, n <= sizeof(e->io.data) ? n : sizeof(e->io.data));
    }
}

void emu_exit_fill_mmio(struct vm_exit *e, const struct emu_mmio_access *a)
{
    e->reason = VM_EXIT_MMIO;
    e->mmio.gpa = a->gpa;
    e->mmio.len = a->len;
    e->mmio.is_write = a->is_write;
    memset(e->mmio.data, 0, sizeof(e->mmio.data));
    if (a->is_write)
        memcpy(e->mmio.data, a->data,
               a->len <= sizeof(e->mmio.data) ? a->len : sizeof(e->mmio.data));
}

void emu_exit_fill_mmio_failure(struct vm_exit *e, const struct emu_mmio *m)
{
    e->reason = VM_EXIT_INTERNAL_ERROR;
    e->internal.suberror = VM_INTERNAL_EMULATION;
    size_t n = strnlen(m->why, sizeof(m->why));
    if (n > sizeof(e->internal.message) - 1)
        n = sizeof(e->internal.message) - 1;
    memcpy(e->internal.message, m->why, n);
    e->internal.message[n] = 0;
}
