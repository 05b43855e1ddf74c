/* isolated_run.h - run one guest in a child process and collect its result.
 *
 * trap_emulate and dbt run guest code inside the process that hosts them; a guest that
 * deliberately scribbles over host memory could take that process down. The CLI therefore
 * runs every guest in a forked child: the vmlab process itself survives anything a guest does
 * and reports such a death as VMLAB_STATUS_CRASHED. The child also has a hard deadline (the
 * time budget plus a grace period) in case a backend failed to enforce the budget.
 */
#ifndef VMLAB_ISOLATED_RUN_H
#define VMLAB_ISOLATED_RUN_H

#include "vmm/machine.h"

/* Always fills *result (status + message). Returns 0, or -errno if no child could be run. */
int isolated_run(const struct machine_config *config, struct machine_result *result);

#endif
