/* backend_registry.c - every backend compiled into vmlab, in presentation order. */
#include "backend.h"

#include <errno.h>
#include <string.h>

static const struct backend_ops *const backends[] = {
    &trap_emulate_backend_ops,
    &dbt_backend_ops,
    &vtx_backend_ops,
    NULL,
};

const struct backend_ops *const *backend_list(void)
{
    return backends;
}

const struct backend_ops *backend_find(const char *name)
{
    for (unsigned i = 0; backends[i]; i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

int backend_check_ops(const struct backend_ops *ops)
{
    if (!ops || !ops->name || !ops->probe || !ops->vm_create || !ops->vm_destroy ||
        !ops->vcpu_create || !ops->vcpu_destroy || !ops->vcpu_get_state || !ops->vcpu_set_state ||
        !ops->vcpu_run || !ops->vcpu_inject_interrupt)
        return -EINVAL;
    return 0;
}
