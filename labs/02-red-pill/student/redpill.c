/* redpill.c - lab 2: a guest that tells which vmlab backend it runs on.
 *
 * Print exactly one line "REDPILL: <backend>" with <backend> one of trap_emulate, dbt, vtx
 * (other lines - your evidence - are welcome), then return 0. The grader builds this file with
 * vmlab-guest-cc and runs it three times on every backend this host offers; all three answers
 * must be right.
 *
 * Everything in guest.h is available (guest_tests/README.md): pushf/popf, cli/sti, sgdt/sidt,
 * rdtsc, cpuid, clock_us(), the IDT helpers, guest_printf ... and inline assembly.
 */
#include "guest.h"

/* TODO (step 1): something trap_emulate cannot hide. The guest runs at CPL 3 there: which
 * sensitive instruction does not trap, and what does it show that the other two backends
 * do not? (vmlab conformance lists them, with the reason.) */
static bool looks_like_trap_emulate(void)
{
    return false;
}

/* TODO (step 2): dbt against vtx. Both virtualize every sensitive instruction correctly, so
 * the difference is not in what an instruction does but in what it costs, and when. What
 * does a binary translator pay that hardware does not, and how can a guest provoke it and
 * time it (rdtsc, clock_us)? */
static bool looks_like_dbt(void)
{
    return false;
}

int main(void)
{
    const char *backend = "unknown";
    if (looks_like_trap_emulate())
        backend = "trap_emulate";
    else if (looks_like_dbt())
        backend = "dbt";
    /* TODO (step 3): and otherwise? Make sure a guess is not what passes. */
    guest_printf("REDPILL: %s\n", backend);
    return 0;
}
