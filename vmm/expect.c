/* expect.c - resolve a guest's declared expectations for one backend (see expect.h). */
#include "expect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine.h"

const char *expect_outcome_name(enum expect_outcome outcome)
{
    switch (outcome) {
    case EXPECT_XFAIL:
        return "xfail";
    case EXPECT_SKIP:
        return "skip";
    default:
        return "pass";
    }
}

/* Split "a|b|c|d" into at most n fields (in place, in a copy). Returns the field count. */
static unsigned split(char *rec, char **fields, unsigned n)
{
    unsigned k = 0;
    fields[k++] = rec;
    for (char *p = rec; *p && k < n; p++)
        if (*p == '|') {
            *p = 0;
            fields[k++] = p + 1;
        }
    return k;
}

/* "N" with 0 <= N <= max, decimal, nothing else. */
static bool number_valid(const char *s, unsigned long max)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    return !*end && v <= max;
}

/* The endings expect_ending_of() can produce and a guest may ask for. An unknown ending could
 * never match, so the test would fail for a spelling mistake: count it as malformed instead. */
static bool ending_valid(const char *e)
{
    if (!strncmp(e, "exit:", 5))
        return number_valid(e + 5, 255);
    if (!strncmp(e, "exception:", 10))
        return number_valid(e + 10, 255);
    return !strcmp(e, "shutdown") || !strcmp(e, "budget") || !strcmp(e, "halted") ||
           !strcmp(e, "mmio");
}

static bool condition_holds(const struct backend_ops *b, const char *cond)
{
    if (!cond[0])
        return true;
    bool negate = cond[0] == '!';
    const char *name = negate ? cond + 1 : cond;
    bool has = b->host_has ? b->host_has(name) : false;
    return negate ? !has : has;
}

void expect_resolve(const char *section, size_t size, const struct backend_ops *backend,
                    struct expectation *out, unsigned *malformed)
{
    memset(out, 0, sizeof(*out));
    out->outcome = EXPECT_PASS;
    *malformed = 0;
    bool decided = false;
    size_t pos = 0;
    while (section && pos < size) {
        size_t len = strnlen(section + pos, size - pos);
        if (len == 0) {
            pos++;
            continue;
        }
        char rec[512];
        if (len >= sizeof(rec) || pos + len == size) { /* too long or not NUL-terminated */
            (*malformed)++;
            pos += len + 1;
            continue;
        }
        memcpy(rec, section + pos, len + 1);
        pos += len + 1;
        char *f[4];
        unsigned k = split(rec, f, 4);
        if (!strcmp(f[0], "ending") && k == 2) {
            if (ending_valid(f[1]))
                snprintf(out->ending, sizeof(out->ending), "%s", f[1]);
            else
                (*malformed)++;
            continue;
        }
        if (!strcmp(f[0], "timeout") && k == 2) {
            char *end;
            double t = strtod(f[1], &end);
            if (*end || t <= 0 || t > 3600)
                (*malformed)++;
            else
                out->timeout_s = t;
            continue;
        }
        if (k != 4) {
            (*malformed)++;
            continue;
        }
        enum expect_outcome o;
        if (!strcmp(f[1], "pass"))
            o = EXPECT_PASS;
        else if (!strcmp(f[1], "xfail"))
            o = EXPECT_XFAIL;
        else if (!strcmp(f[1], "skip"))
            o = EXPECT_SKIP;
        else {
            (*malformed)++;
            continue;
        }
        if (decided || (strcmp(f[0], "*") && strcmp(f[0], backend->name)) ||
            !condition_holds(backend, f[2]))
            continue;
        decided = true;
        out->outcome = o;
        snprintf(out->reason, sizeof(out->reason), "%s", f[3]);
    }
}

void expect_ending_of(const struct machine_result *r, char *buf, size_t size)
{
    if (r->guest_exited) {
        snprintf(buf, size, "exit:%d", r->status);
        return;
    }
    switch (r->status) {
    case VMLAB_STATUS_EXCEPTION:
        snprintf(buf, size, "exception:%u", r->last_exit.exception.vector);
        break;
    case VMLAB_STATUS_SHUTDOWN:
        snprintf(buf, size, "shutdown");
        break;
    case VMLAB_STATUS_BUDGET:
        snprintf(buf, size, "budget");
        break;
    case VMLAB_STATUS_HALTED:
        snprintf(buf, size, "halted");
        break;
    case VMLAB_STATUS_MMIO:
        snprintf(buf, size, "mmio");
        break;
    case VMLAB_STATUS_FAIL_ENTRY:
        snprintf(buf, size, "fail_entry");
        break;
    case VMLAB_STATUS_CRASHED:
        snprintf(buf, size, "crashed");
        break;
    case VMLAB_STATUS_UNAVAILABLE:
        snprintf(buf, size, "unavailable");
        break;
    case VMLAB_STATUS_BAD_IMAGE:
    case VMLAB_STATUS_NO_INPUT:
        snprintf(buf, size, "bad_image");
        break;
    default:
        snprintf(buf, size, "internal");
        break;
    }
}
