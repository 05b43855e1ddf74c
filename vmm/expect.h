/* expect.h - expected outcome of a guest test per backend, read from the guest image.
 *
 * Guests declare expectations with GUEST_EXPECT(...) and friends (guest_tests/lib/guest.h),
 * which place NUL-terminated records in the ELF section ".vmlab_expect":
 *
 *     "backend|pass|condition|reason"
 *     "backend|skip|condition|reason"
 *     "backend|xfail|condition|ending[ text]|reason"
 *     "backend|xfail_or_pass|condition|ending[ text]|reason"
 *
 * backend   trap_emulate, dbt, vtx or * (any)
 * outcome   pass, xfail (expected to fail, the reason says why) or skip; xfail_or_pass is an
 *           xfail that may also pass: a bug below vmlab that shows in some runs only (the
 *           nested CPU's timing), never one of vmlab's - a failure must still end as declared
 * condition empty (always), or a host condition the backend answers through ops->host_has():
 *           "cpuid_traps", "rdtsc_traps", "umip_faults" ... ; "!cond" negates. The first
 *           record whose backend and condition match wins; with no match the outcome is pass.
 * ending    (xfail only, required) how the expected failure ends: one of the endings below,
 *           or "internal" / "fail_entry" (a backend that cannot run the instruction). Any
 *           other ending is a FAIL: a guest expected to fail its assertion (exit:1) that
 *           crashes or hangs instead is not "as documented". Optionally followed by a space
 *           and text the guest's last console line must contain ("exit:1 FAIL sgdt.c").
 * reason    the rest of the record (it may contain '|'), shown in the conformance matrix
 *
 * Backend-independent records:
 *     "ending|<ending>"   what "pass" means when it is not "the guest wrote 0 to PORT_EXIT":
 *                         "exit:N", "exception:V" (unhandled vector V), "shutdown", "budget",
 *                         "halted", "mmio". Used by the negative tests (guest divides by zero
 *                         with no handler, loops forever, jumps into garbage ...).
 *     "timeout|<seconds>" the time budget `vmlab check` and `vmlab conformance` give this test.
 *     "output|backend|<line>"  a passing run's console output must contain <line> as a whole
 *                         line (trailing CR/LF ignored), after the line the previous output
 *                         record matched: the records are matched in order. backend as above.
 */
#ifndef VMLAB_EXPECT_H
#define VMLAB_EXPECT_H

#include <stdbool.h>
#include <stddef.h>

#include "backend.h"

enum expect_outcome {
    EXPECT_PASS,
    EXPECT_XFAIL,
    EXPECT_SKIP,
    EXPECT_OUTCOME_MAX_VALUE = EXPECT_SKIP
};

#define EXPECT_MAX_OUTPUT 16 /* output records per backend */
#define EXPECT_LINE_SIZE 160

struct expectation {
    enum expect_outcome outcome;
    char reason[256];
    char ending[32];  /* "" = exit status 0; else see above */
    double timeout_s; /* 0 = default */
    /* EXPECT_XFAIL: the ending the failure must have, and "" or text its last console line
     * must contain */
    char xfail_ending[32];
    char xfail_line[EXPECT_LINE_SIZE];
    bool xfail_may_pass; /* xfail_or_pass: a pass is met too */
    /* output records for this backend, in order */
    unsigned output_count;
    char output[EXPECT_MAX_OUTPUT][EXPECT_LINE_SIZE];
};

/* The ending a finished run had, in the same notation ("exit:0", "exception:14", "budget"). */
struct machine_result;
void expect_ending_of(const struct machine_result *result, char *buf, size_t size);

/* Resolve the expectation of `backend` from the section contents. Malformed records are
 * skipped and reported through *malformed (count). */
void expect_resolve(const char *section, size_t size, const struct backend_ops *backend,
                    struct expectation *out, unsigned *malformed);

const char *expect_outcome_name(enum expect_outcome outcome); /* "pass", "xfail", "skip" */

enum expect_judgement {
    EXPECT_MET,            /* expected pass, passed (ending and output) */
    EXPECT_MET_XFAIL,      /* expected failure, failed exactly as declared */
    EXPECT_NOT_MET,        /* expected pass and failed, or expected failure that ended otherwise */
    EXPECT_PASSED_INSTEAD, /* expected failure, passed */
    EXPECT_JUDGEMENT_MAX_VALUE = EXPECT_PASSED_INSTEAD
};

/* Judge a finished run (not for EXPECT_SKIP): its ending (expect_ending_of) and its console
 * output (NUL-terminated, may be ""). `why` gets one line saying what did not match, or ""
 * when the expectation was met. */
enum expect_judgement expect_judge(const struct expectation *ex, const char *actual_ending,
                                   const char *console, char *why, size_t why_size);

/* The last non-empty line of `console`, without its line end, into buf. */
void expect_last_line(const char *console, char *buf, size_t size);

#endif
