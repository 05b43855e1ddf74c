/* isolated_run.c - fork, run, pipe the result back (see isolated_run.h). */
#define _GNU_SOURCE
#include "isolated_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GRACE_S 10.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int isolated_run(const struct machine_config *config, struct machine_result *result)
{
    return isolated_run_fate(config, result, NULL);
}

int isolated_run_fate(const struct machine_config *config, struct machine_result *result,
                      enum isolated_fate *fate)
{
    enum isolated_fate unused;
    if (!fate)
        fate = &unused;
    *fate = ISOLATED_NO_RESULT;
    memset(result, 0, sizeof(*result));
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        result->status = VMLAB_STATUS_INTERNAL;
        snprintf(result->message, sizeof(result->message), "pipe: %s", strerror(errno));
        return -errno;
    }
    fflush(NULL); /* or the child would print the parent's buffered output again */
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(fds[0]);
        close(fds[1]);
        result->status = VMLAB_STATUS_INTERNAL;
        snprintf(result->message, sizeof(result->message), "fork: %s", strerror(err));
        return -err;
    }
    if (pid == 0) {
        close(fds[0]);
        struct machine_result r;
        machine_run(config, &r);
        fflush(NULL);
        _exit(write_all(fds[1], &r, sizeof(r)) == 0 ? 0 : 1);
    }
    close(fds[1]);
    double timeout = config->timeout_s > 0 ? config->timeout_s : 5.0;
    double deadline = now_s() + timeout + GRACE_S;
    size_t got = 0;
    bool killed = false;
    while (got < sizeof(*result)) {
        double left = deadline - now_s();
        if (left <= 0) {
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t n = read(fds[0], (char *)result + got, sizeof(*result) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got == sizeof(*result)) {
        *fate = ISOLATED_FINISHED;
        return 0;
    }
    memset(result, 0, sizeof(*result));
    result->status = VMLAB_STATUS_CRASHED;
    *fate = killed ? ISOLATED_HUNG : WIFSIGNALED(status) ? ISOLATED_DIED : ISOLATED_NO_RESULT;
    if (killed)
        snprintf(result->message, sizeof(result->message),
                 "the process running the guest did not finish %.0f s after its time budget and "
                 "was killed (backend failed to enforce the budget)",
                 GRACE_S);
    else if (WIFSIGNALED(status))
        snprintf(result->message, sizeof(result->message),
                 "the process running the guest died with signal %d (%s): host state corrupted by "
                 "the guest or a vmlab bug",
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(result->message, sizeof(result->message),
                 "the process running the guest exited (status %d) without a result",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
