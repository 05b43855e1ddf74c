/* expect.h - expected outcome of a guest test per backend, read from the guest image.
 *
 * Guests declare expectations with GUEST_EXPECT(...) (guest_tests/lib/guest.h), which places
 * NUL-terminated records in the ELF section ".vmlab_expect":
 *
 *     "backend|outcome|condition|reason"
 *
 * backend   trap_emulate, dbt, vtx or * (any)
 * outcome   pass, xfail (expected to fail, the reason says why) or skip
 * condition empty (always), or a host condition the backend answers through ops->host_has():
 *           "cpuid_traps", "rdtsc_traps", "umip_faults" ... ; "!cond" negates. The first
 *           record whose backend and condition match wins; with no match the outcome is pass.
 * reason    one line shown in the conformance matrix
 *
 * Two more record forms, backend-independent:
 *     "ending|<ending>"   what "pass" means when it is not "the guest wrote 0 to PORT_EXIT":
 *                         "exit:N", "exception:V" (unhandled vector V), "shutdown", "budget",
 *                         "halted", "mmio". Used by the negative tests (guest divides by zero
 *                         with no handler, loops forever, jumps into garbage ...).
 *     "timeout|<seconds>" the time budget `vmlab check` and `vmlab conformance` give this test.
 */
#ifndef VMLAB_EXPECT_H
#define VMLAB_EXPECT_H

#include <stddef.h>

#include "backend.h"

enum expect_outcome {
    EXPECT_PASS,
    EXPECT_XFAIL,
    EXPECT_SKIP,
    EXPECT_OUTCOME_MAX_VALUE = EXPECT_SKIP
};

struct expectation {
    enum expect_outcome outcome;
    char reason[256];
    char ending[32];  /* "" = exit status 0; else see above */
    double timeout_s; /* 0 = default */
};

/* The ending a finished run had, in the same notation ("exit:0", "exception:14", "budget"). */
struct machine_result;
void expect_ending_of(const struct machine_result *result, char *buf, size_t size);

/* Resolve the expectation of `backend` from the section contents. Malformed records are
 * skipped and reported through *malformed (count). */
void expect_resolve(const char *section, size_t size, const struct backend_ops *backend,
                    struct expectation *out, unsigned *malformed);

const char *expect_outcome_name(enum expect_outcome outcome); /* "pass", "xfail", "skip" */

#endif
