/* robust_exception_stack_on_code.c - the guest's stack is on the very page its code runs from
 * when an exception is delivered through its IDT: the CPU writes the interrupt frame there
 * (SDM vol. 3A 6.14.2). On dbt that page is write-protected (it holds translated code), so
 * the frame write - done by the SIGSEGV handler that delivers the guest's #PF - must take the
 * self-modifying-code path like any other store; it killed the process (status 86) while a
 * second SIGSEGV inside that handler could not be delivered. Found by the chaos test. */
#include "guest.h"

__asm__(".pushsection .data.robust_code_stack, \"awx\", @progbits\n"
        ".balign 4096\n"
        "code_and_stack:\n"
        "  mov %rsp, saved_rsp(%rip)\n"
        "  lea stack_top(%rip), %rsp\n"
        "  mov 0x1000, %eax\n" /* #PF (SIGSEGV): the frame goes below stack_top, on this page */
        "  movl $0x5a, stack_top-64(%rip)\n" /* and a plain store there, after it */
        "  mov saved_rsp(%rip), %rsp\n"
        "  ret\n"
        "  .fill 1024, 1, 0xcc\n"
        "  .balign 16\n"
        "stack_top:\n"
        "  .fill 64, 1, 0\n"
        ".popsection\n"
        ".pushsection .bss\n saved_rsp: .quad 0\n .popsection\n");
void code_and_stack(void);

static volatile uint64_t frame_rsp;

static void skip_load(struct isr_frame *f)
{
    frame_rsp = (uint64_t)(uintptr_t)f;
    f->rip += 7; /* 8B 04 25 00 10 00 00 */
}

int main(void)
{
    idt_init();
    idt_set_handler(14, skip_load);
    for (int i = 0; i < 3; i++)
        code_and_stack();
    GUEST_ASSERT_EQ(isr_count[14], 3);
    GUEST_ASSERT(frame_rsp > (uint64_t)(uintptr_t)code_and_stack);
    GUEST_ASSERT(frame_rsp < (uint64_t)(uintptr_t)code_and_stack + 4096);
    GUEST_DONE();
}
