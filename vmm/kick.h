/* kick.h - make a running vCPU come back to the VMM at a given time.
 *
 * A POSIX timer on CLOCK_MONOTONIC delivers VMLAB_SIG_KICK to the vCPU's own thread
 * (SIGEV_THREAD_ID); each backend's handler turns the signal into VM_EXIT_INTR (KVM:
 * immediate_exit; trap_emulate: leave the guest from the signal handler; dbt: a flag checked
 * at block entry). The timer re-fires every KICK_REPEAT_NS after its deadline, so a kick that
 * lands at an unlucky instant (while the VMM itself runs) is followed by another: a guest can
 * never run unbounded past its deadline.
 */
#ifndef VMLAB_KICK_H
#define VMLAB_KICK_H

#include <stdint.h>
#include <time.h>

#define KICK_REPEAT_NS 10000000ULL /* 10 ms */

struct kick_timer {
    timer_t timer;
    int created;
    uint64_t armed_ns; /* last deadline armed (re-arming the same one is skipped) */
};

int kick_timer_create(struct kick_timer *kt); /* for the calling thread; 0 or -errno */
int kick_timer_arm(struct kick_timer *kt, uint64_t deadline_ns); /* CLOCK_MONOTONIC, absolute */
void kick_timer_destroy(struct kick_timer *kt);
/* Install a process-wide fallback handler for VMLAB_SIG_KICK (ignore-like, never fatal) so a
 * late kick after a backend restored its previous handler cannot kill the process. */
void kick_install_fallback_handler(void);

#endif
