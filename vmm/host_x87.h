/* host_x87.h - who holds the thread's x87 unit between two runs of a guest.
 *
 * dbt leaves an x87-using guest's x87 registers in the unit when vcpu_run returns to the VMM
 * (putting them aside with FNSAVE and back with FRSTOR at every exit cost up to ~190 ns on the
 * hosts we measured) and hands host code only a host-sane control word (FNSTCW/FLDCW: every
 * x87 exception masked). That is safe because vmlab's host code executes no x87 or MMX
 * instruction (test_dbt_backend checks the whole binary). The guest that left its registers
 * there is the thread's *holder*. Code that is about to use the x87 unit itself - execute x87
 * or MMX instructions, or load another x87 state (XRSTOR, FXRSTOR or FRSTOR of another guest,
 * as trap_emulate's guest entry does) - calls host_x87_claim() first: the holder puts its
 * registers aside then, and only then. The same idea as a kernel's lazy FPU switching. The
 * x87 unit is per thread, and so is the holder: a vCPU runs on one thread. */
#ifndef VMLAB_HOST_X87_H
#define VMLAB_HOST_X87_H

struct host_x87_holder {
    /* Put the live x87 registers aside (into the holder's own memory). */
    void (*put_aside)(struct host_x87_holder *holder);
};

extern _Thread_local struct host_x87_holder *host_x87_holder;

/* This thread is about to use the x87 unit: the holder, if any, puts its registers aside. */
static inline void host_x87_claim(void)
{
    struct host_x87_holder *h = host_x87_holder;
    if (h) {
        host_x87_holder = 0;
        h->put_aside(h);
    }
}

#endif
