/* triple_fault.c - with an empty IDT (limit 0) INT3 cannot be delivered (#GP), neither can
 * the #GP, nor the resulting #DF: triple fault, the run ends with SHUTDOWN
 * (SDM vol. 3A 6.15, interrupt 8). */
#include "guest.h"

GUEST_EXPECT_XFAIL("vtx", "kvm_pvm", "internal",
                   "this host's KVM is PVM (software, no VT-x/AMD-V): it cannot emulate INT3 for a "
                   "guest that is not PVM-aware (KVM internal error instead of a triple fault)");

GUEST_EXPECT_ENDING("shutdown");

int main(void)
{
    struct dtr empty = {.limit = 0, .base = 0};
    lidt(&empty);
    __asm__ volatile("int3");
    return 0;
}
