/* vtx.c - placeholder until the vtx backend lands: registered, honestly unavailable. */
#include <errno.h>
#include <stdio.h>

#include "vmm/backend.h"

static int vtx_probe(char *reason, size_t size)
{
    snprintf(reason, size, "not built yet (backend under development)");
    return -ENOSYS;
}

const struct backend_ops vtx_backend_ops = {
    .name = "vtx",
    .summary = "not built yet",
    .probe = vtx_probe,
};
