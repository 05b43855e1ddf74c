/* sidt.c - after LIDT, SIDT returns the guest's IDTR. Sensitive but unprivileged (Robin &
 * Irvine): trap_emulate cannot catch it at CPL 3 unless UMIP makes it fault. */
#include "guest.h"

GUEST_EXPECT_XFAIL(
    "trap_emulate", "!umip_faults", "exit:1 d.base == (uint64_t)idt_table()",
    "SIDT is sensitive but unprivileged: at CPL 3 it reads the host IDTR (or the host "
    "kernel UMIP dummy), not the guest's (Popek-Goldberg violation)");

int main(void)
{
    idt_init();
    struct dtr d;
    sidt(&d);
    GUEST_ASSERT_EQ(d.base, (uint64_t)idt_table());
    GUEST_ASSERT_EQ(d.limit, 256 * 16 - 1);
    GUEST_DONE();
}
