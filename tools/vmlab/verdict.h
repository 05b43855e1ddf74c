/* verdict.h - compare a run against the guest's declared expectation (vmm/expect.h). */
#ifndef VMLAB_VERDICT_H
#define VMLAB_VERDICT_H

#include <stdbool.h>

#include "vmm/expect.h"
#include "vmm/machine.h"

enum verdict_kind {
    VERDICT_OK,              /* expected pass, passed */
    VERDICT_XFAIL,           /* expected failure, failed: as documented */
    VERDICT_FAIL,            /* expected pass, failed */
    VERDICT_UNEXPECTED_PASS, /* expected failure, passed: as loud as a failure */
    VERDICT_SKIP,            /* skipped: backend unavailable or expectation says skip */
};

struct verdict {
    enum verdict_kind kind;
    char expected[48]; /* "pass", "xfail exit:1", "skip", "pass budget" */
    char actual[48];   /* "exit:0", "exception:6", ... */
    char detail[1024]; /* reason or message */
};

struct guest_case {
    const char *path;
    struct expectation expect;
    bool has_expect;
    unsigned malformed; /* malformed expectation records: the verdict is FAIL */
};

/* Read the image's expectations for `backend`. 0, or -errno with detail in v->detail. */
int verdict_prepare(const char *path, const struct backend_ops *backend, struct guest_case *gc,
                    struct verdict *v);
/* Run (isolated) and judge. */
void verdict_run(const struct guest_case *gc, const struct backend_ops *backend,
                 const struct machine_config *base, struct verdict *v);
const char *verdict_name(enum verdict_kind kind);
bool verdict_is_unexpected(enum verdict_kind kind);

#endif
