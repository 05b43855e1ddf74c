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

/* How the child ended, for callers that tell a death from a hang (the chaos test). */
enum isolated_fate {
    ISOLATED_FINISHED, /* the child sent its result */
    ISOLATED_DIED,     /* killed by a signal before it sent a result */
    ISOLATED_HUNG,     /* still running GRACE seconds after its budget: we killed it */
    ISOLATED_NO_RESULT /* exited without a result, or no child could be run */
};

/* Always fills *result (status + message). Returns 0, or -errno if no child could be run. */
int isolated_run(const struct machine_config *config, struct machine_result *result);
/* The same, and says how the child ended (fate may be NULL). */
int isolated_run_fate(const struct machine_config *config, struct machine_result *result,
                      enum isolated_fate *fate);

#endif
