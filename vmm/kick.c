/* kick.c - the timer that brings a vCPU back to the VMM (see kick.h). */
#define _GNU_SOURCE
#include "kick.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"

int kick_timer_create(struct kick_timer *kt)
{
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = VMLAB_SIG_KICK;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &kt->timer) < 0)
        return -errno;
    kt->created = 1;
    return 0;
}

int kick_timer_arm(struct kick_timer *kt, uint64_t deadline_ns)
{
    if (deadline_ns == kt->armed_ns && deadline_ns)
        return 0;
    kt->armed_ns = deadline_ns;
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(deadline_ns / 1000000000ULL);
    its.it_value.tv_nsec = (long)(deadline_ns % 1000000000ULL);
    if (deadline_ns == 0)
        its.it_value.tv_nsec = 1; /* 0 would disarm: fire now */
    its.it_interval.tv_nsec = (long)KICK_REPEAT_NS;
    if (timer_settime(kt->timer, TIMER_ABSTIME, &its, NULL) < 0)
        return -errno;
    return 0;
}

void kick_timer_destroy(struct kick_timer *kt)
{
    if (kt->created)
        timer_delete(kt->timer);
    kt->created = 0;
}

static void kick_fallback_handler(int sig)
{
    (void)sig;
}

void kick_install_fallback_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_fallback_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(VMLAB_SIG_KICK, &sa, NULL);
}
