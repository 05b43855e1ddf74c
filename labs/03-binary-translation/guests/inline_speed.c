/* inline_speed.c - lab 3: what an inline translation saves. Times, in one run and with the
 * guest's clock port (real time, the same on every backend):
 *   cli_sti     CLI; STI pairs (inline on dbt)
 *   pushf_popf  PUSHFQ; POPFQ pairs (inline on dbt)
 *   callout     MOV RAX, CR8 pairs: a sensitive instruction dbt always hands to the emulation
 *               core through a callout - the cost an instruction has without an inline
 *               translation
 * Each is the median of 5 rounds, taken alternately so that a noisy neighbour slows them
 * alike; a round repeats blocks of pairs until at least 10 ms have passed. Prints, in
 * picoseconds per pair:
 *   inline_speed cli_sti=N pushf_popf=N callout=N
 * The grader compares callout / cli_sti and callout / pushf_popf (labs/03-binary-translation/
 * tests). */
#include "guest.h"

#define BLOCK 2048
#define ROUNDS 5
#define MIN_US 10000

static void loop_cli_sti(void)
{
    for (unsigned i = 0; i < BLOCK; i++)
        __asm__ volatile("cli\n\tsti" ::: "memory");
}
static void loop_pushf_popf(void)
{
    for (unsigned i = 0; i < BLOCK; i++)
        __asm__ volatile("pushfq\n\tpopfq" ::: "memory", "cc");
}
static void loop_callout(void)
{
    uint64_t v;
    for (unsigned i = 0; i < BLOCK; i++)
        __asm__ volatile("movq %%cr8, %0\n\tmovq %%cr8, %0" : "=r"(v)::"memory");
}

/* Picoseconds per pair of one round. */
static uint64_t round_ps(void (*loop)(void))
{
    uint64_t pairs = 0;
    uint32_t t0 = clock_us(), t;
    do {
        loop();
        pairs += BLOCK;
        t = clock_us();
    } while (t - t0 < MIN_US);
    return (uint64_t)(t - t0) * 1000000 / pairs;
}

static uint64_t median5(uint64_t *v)
{
    for (unsigned i = 1; i < ROUNDS; i++) /* insertion sort */
        for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint64_t x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    return v[ROUNDS / 2];
}

int main(void)
{
    uint64_t a[ROUNDS], b[ROUNDS], c[ROUNDS];
    sti(); /* the loops keep the virtual IF as it is: set (STI after CLI, POPF of its own image) */
    for (unsigned r = 0; r < ROUNDS; r++) {
        a[r] = round_ps(loop_cli_sti);
        b[r] = round_ps(loop_pushf_popf);
        c[r] = round_ps(loop_callout);
    }
    cli();
    guest_printf("inline_speed cli_sti=%llu pushf_popf=%llu callout=%llu\n",
                 (unsigned long long)median5(a), (unsigned long long)median5(b),
                 (unsigned long long)median5(c));
    GUEST_DONE();
}
