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
