/* robust_rflags.c - the flags a guest sets with POPF survive a sensitive instruction the
 * backend handles (CLI: trap_emulate's signal handler, dbt's callout) and an exit to the VMM
 * (OUT), and reach host code on no backend. AC would make host code's unaligned accesses
 * raise #AC (SIGBUS in the signal handler kills the process); NT makes IRETQ #GP in 64-bit
 * mode (SDM vol. 2A IRET), so trap_emulate could not re-enter the guest; DF breaks the
 * ABI's string operations; ID is harmless but the guest's own. The guest must read back
 * exactly what it set (issue 10). */
#include "guest.h"

#define AC (1ULL << 18)
#define NT (1ULL << 14)
#define DF (1ULL << 10)
#define ID (1ULL << 21)
#define ARITH 0x8D5ULL /* CF PF AF ZF SF OF */
#define CHECKED (AC | NT | DF | ID | ARITH)

/* POPF `set`, one CLI, PUSHF: all in one asm block, so that no compiler code runs with the
 * poisoned flags. */
static uint64_t across_cli(uint64_t set)
{
    uint64_t after;
    __asm__ volatile("pushfq\n\t"
                     "pushq %[set]\n\t"
                     "popfq\n\t"
                     "cli\n\t"
                     "pushfq\n\t"
                     "popq %[after]\n\t"
                     "popfq"
                     : [after] "=r"(after)
                     : [set] "r"(set)
                     : "memory", "cc");
    return after;
}

/* The same with a CPUID: a trap where the host has CPUID faulting, a callout on dbt, an exit
 * on vtx. */
static uint64_t across_cpuid(uint64_t set)
{
    uint64_t after;
    uint32_t a = 0, b, c = 0, d;
    __asm__ volatile("pushfq\n\t"
                     "pushq %[set]\n\t"
                     "popfq\n\t"
                     "cpuid\n\t"
                     "pushfq\n\t"
                     "popq %[after]\n\t"
                     "popfq"
                     : [after] "=&r"(after), "+a"(a), "=b"(b), "+c"(c), "=d"(d)
                     : [set] "r"(set)
                     : "memory", "cc");
    return after;
}

/* The same with an OUT to the scratch port: an exit to the VMM on every backend. */
static uint64_t across_out(uint64_t set)
{
    uint64_t after;
    __asm__ volatile("pushfq\n\t"
                     "pushq %[set]\n\t"
                     "popfq\n\t"
                     "outl %%eax, %%dx\n\t"
                     "pushfq\n\t"
                     "popq %[after]\n\t"
                     "popfq"
                     : [after] "=r"(after)
                     : [set] "r"(set), "a"(0x1234), "d"(GUEST_PORT_SCRATCH)
                     : "memory", "cc");
    return after;
}

int main(void)
{
    static const struct {
        const char *name;
        uint64_t flags;
    } cases[] = {
        {"AC", AC},
        {"NT", NT},
        {"DF", DF},
        {"ID", ID},
        {"none", 0},
        {"CF ZF OF", 0x841},
        {"all", AC | NT | DF | ID | 0x8D5},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t set = 0x2 | cases[i].flags;
        guest_printf("%s: ", cases[i].name);
        GUEST_ASSERT_EQ(across_cli(set) & CHECKED, set & CHECKED);
        GUEST_ASSERT_EQ(across_cpuid(set) & CHECKED, set & CHECKED);
        GUEST_ASSERT_EQ(across_out(set) & CHECKED, set & CHECKED);
        guest_printf("kept across a trap and an exit\n");
    }
    GUEST_DONE();
}
