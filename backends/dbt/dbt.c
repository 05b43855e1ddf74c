/* dbt.c - placeholder until the dbt backend lands: registered, honestly unavailable. */
#include <errno.h>
#include <stdio.h>

#include "vmm/backend.h"

static int dbt_probe(char *reason, size_t size)
{
    snprintf(reason, size, "not built yet (backend under development)");
    return -ENOSYS;
}

const struct backend_ops dbt_backend_ops = {
    .name = "dbt",
    .summary = "not built yet",
    .probe = dbt_probe,
};
