/* rdpmc.c - RDPMC with an invalid counter index raises #GP (SDM vol. 2B RDPMC).
 * Privileged when CR4.PCE = 0: passes everywhere. */
#include "guest.h"

extern char bad_rdpmc[], bad_rdpmc_after[];

static void on_gp(struct isr_frame *f)
{
    GUEST_ASSERT_EQ(f->rip, (uint64_t)bad_rdpmc);
    f->rip = (uint64_t)bad_rdpmc_after;
}

int main(void)
{
    idt_init();
    idt_set_handler(13, on_gp);
    uint32_t lo, hi;
    __asm__ volatile("bad_rdpmc: rdpmc\n\tbad_rdpmc_after:" : "=a"(lo), "=d"(hi) : "c"(0x1000));
    GUEST_ASSERT_EQ(isr_count[13], 1);
    GUEST_DONE();
}
