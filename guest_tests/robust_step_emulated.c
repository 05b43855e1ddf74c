/* robust_step_emulated.c - a guest that sets TF with POPF single-steps: after the next
 * instruction a #DB trap reports RIP past it (SDM vol. 3B 18.3.1.4), whether that
 * instruction runs natively (NOP), is emulated (CLI: trap_emulate's handler, dbt's inline
 * code) or needs the VMM (OUT). trap_emulate used to drop the guest's TF at its first trap,
 * so the guest stopped single-stepping (issue 10: the guest sees exactly the flags it set). */
#include "guest.h"

GUEST_EXPECT_XFAIL("vtx", "kvm_pvm", "exit:1 db_rip == after",
                   "PVM does not end an OUT it emulates with the single-step trap: #DB one "
                   "instruction late");

#define TF (1ULL << 8)

static volatile uint64_t db_count, db_rip;

static void on_db(struct isr_frame *f)
{
    db_count++;
    db_rip = f->rip;
    f->rflags &= ~TF; /* one step is enough */
}

/* Set TF with POPF; the instruction after POPF is stepped: #DB with RIP at label 2. RAX and
 * RDX are the instruction's operands (AL = 0, DX = the scratch port). */
#define STEP_OVER(insn)                                                                            \
    ({                                                                                             \
        uint64_t _after, _rax = 0, _rdx = GUEST_PORT_SCRATCH;                                      \
        __asm__ volatile("lea 2f(%%rip), %[after]\n\t"                                             \
                         "pushfq\n\t"                                                              \
                         "orq $0x100, (%%rsp)\n\t"                                                 \
                         "popfq\n\t" insn "\n"                                                     \
                         "2:\n\t"                                                                  \
                         "nop"                                                                     \
                         : [after] "=&r"(_after), "+a"(_rax), "+d"(_rdx)                           \
                         :                                                                         \
                         : "memory", "cc");                                                        \
        _after;                                                                                    \
    })

static void expect_one_step(const char *what, uint64_t after)
{
    guest_printf("%s: %llu #DB at %#llx (want 1 at %#llx)\n", what, (unsigned long long)db_count,
                 (unsigned long long)db_rip, (unsigned long long)after);
    GUEST_ASSERT_EQ(db_count, 1);
    GUEST_ASSERT_EQ(db_rip, after);
    GUEST_ASSERT_EQ(pushf() & TF, 0);
    db_count = 0;
    db_rip = 0;
}

int main(void)
{
    idt_init();
    idt_set_handler(1, on_db);
    expect_one_step("nop", STEP_OVER("nop"));
    expect_one_step("cli", STEP_OVER("cli"));
    expect_one_step("out", STEP_OVER("outb %%al, %%dx"));
    expect_one_step("in", STEP_OVER("inb %%dx, %%al"));
    GUEST_DONE();
}
