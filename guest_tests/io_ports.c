/* io_ports.c - IN/OUT in every size and both port forms; IN's register width rules.
 * Privileged (IOPL 0 at CPL 3): emulated on trap_emulate, translated on dbt, IO exits on vtx. */
#include "guest.h"

int main(void)
{
    outb(GUEST_PORT_SCRATCH, 0x5a);
    GUEST_ASSERT_EQ(inb(GUEST_PORT_SCRATCH), 0x5a);
    outw(GUEST_PORT_SCRATCH, 0x1234);
    GUEST_ASSERT_EQ(inw(GUEST_PORT_SCRATCH), 0x1234);
    outl(GUEST_PORT_SCRATCH, 0xdeadbeef);
    GUEST_ASSERT_EQ(inl(GUEST_PORT_SCRATCH), 0xdeadbeef);
    GUEST_ASSERT_EQ(inb(GUEST_PORT_CONSOLE), 0xe9); /* imm8 form; debugcon reads back 0xE9 */
    /* IN EAX zero-extends into RAX; IN AX merges (SDM vol. 1 3.4.1.1) */
    uint64_t rax = ~0ULL;
    __asm__ volatile("inl %%dx, %%eax" : "+a"(rax) : "d"(GUEST_PORT_SCRATCH));
    GUEST_ASSERT_EQ(rax, 0xdeadbeefULL);
    outw(GUEST_PORT_SCRATCH, 0x4321);
    rax = ~0ULL;
    __asm__ volatile("inw %%dx, %%ax" : "+a"(rax) : "d"(GUEST_PORT_SCRATCH));
    GUEST_ASSERT_EQ(rax, 0xffffffffffff4321ULL);
    GUEST_DONE();
}
