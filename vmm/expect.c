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

/* An expected failure may also end in an error of the backend that cannot run the guest
 * (PVM's "KVM could not emulate an instruction" is "internal"); never "crashed": a dead guest
 * process is a bug, not an expectation. */
static bool xfail_ending_valid(const char *e)
{
    return ending_valid(e) || !strcmp(e, "internal") || !strcmp(e, "fail_entry");
}

/* "ending[ text]" of an xfail record into the expectation; false if malformed. */
static bool parse_xfail_ending(const char *field, struct expectation *out)
{
    const char *space = strchr(field, ' ');
    size_t n = space ? (size_t)(space - field) : strlen(field);
    char ending[sizeof(out->xfail_ending)];
    if (n == 0 || n >= sizeof(ending))
        return false;
    memcpy(ending, field, n);
    ending[n] = 0;
    if (!xfail_ending_valid(ending) || (space && !space[1]))
        return false;
    memcpy(out->xfail_ending, ending, n + 1);
    snprintf(out->xfail_line, sizeof(out->xfail_line), "%s", space ? space + 1 : "");
    return true;
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
    unsigned output_count = 0;
    char outputs[EXPECT_MAX_OUTPUT][EXPECT_LINE_SIZE];
    memset(outputs, 0, sizeof(outputs));
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
        char *f[5];
        unsigned k = split(rec, f, 3);
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
            if (end == f[1] || *end || !(t > 0 && t <= 3600)) /* NaN fails too */
                (*malformed)++;
            else
                out->timeout_s = t;
            continue;
        }
        if (!strcmp(f[0], "output")) {
            if (k != 3 || !f[2][0] || strlen(f[2]) >= EXPECT_LINE_SIZE || strchr(f[2], '\n') ||
                output_count >= EXPECT_MAX_OUTPUT) {
                (*malformed)++;
                continue;
            }
            if (!strcmp(f[1], "*") || !strcmp(f[1], backend->name))
                snprintf(outputs[output_count++], EXPECT_LINE_SIZE, "%s", f[2]);
            continue;
        }
        if (k != 3) {
            (*malformed)++;
            continue;
        }
        /* backend|outcome|condition|...: the rest splits by outcome */
        enum expect_outcome o;
        if (!strcmp(f[1], "pass"))
            o = EXPECT_PASS;
        else if (!strcmp(f[1], "xfail") || !strcmp(f[1], "xfail_or_pass"))
            o = EXPECT_XFAIL;
        else if (!strcmp(f[1], "skip"))
            o = EXPECT_SKIP;
        else {
            (*malformed)++;
            continue;
        }
        k = split(f[2], f + 2, o == EXPECT_XFAIL ? 3 : 2);
        if (k != (o == EXPECT_XFAIL ? 3u : 2u)) {
            (*malformed)++;
            continue;
        }
        struct expectation parsed;
        memset(&parsed, 0, sizeof(parsed));
        if (o == EXPECT_XFAIL && !parse_xfail_ending(f[3], &parsed)) {
            (*malformed)++;
            continue;
        }
        if (decided || (strcmp(f[0], "*") && strcmp(f[0], backend->name)) ||
            !condition_holds(backend, f[2]))
            continue;
        decided = true;
        out->outcome = o;
        snprintf(out->reason, sizeof(out->reason), "%s", f[o == EXPECT_XFAIL ? 4 : 3]);
        memcpy(out->xfail_ending, parsed.xfail_ending, sizeof(out->xfail_ending));
        memcpy(out->xfail_line, parsed.xfail_line, sizeof(out->xfail_line));
        out->xfail_may_pass = !strcmp(f[1], "xfail_or_pass");
    }
    /* Output records describe the passing run, whichever record decided the outcome. */
    out->output_count = output_count;
    memcpy(out->output, outputs, sizeof(outputs));
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

void expect_last_line(const char *console, char *buf, size_t size)
{
    const char *line = NULL, *line_end = NULL;
    for (const char *p = console; *p;) {
        const char *e = strchr(p, '\n');
        const char *stop = e ? e : p + strlen(p);
        const char *t = stop;
        while (t > p && t[-1] == '\r')
            t--;
        if (t > p) {
            line = p;
            line_end = t;
        }
        p = e ? e + 1 : stop;
    }
    size_t n = line ? (size_t)(line_end - line) : 0;
    if (size == 0)
        return;
    if (n >= size)
        n = size - 1;
    memcpy(buf, line ? line : "", n);
    buf[n] = 0;
}

/* Match the output records in order against whole lines of the console. Returns the index
 * of the first record not found, or count when all were. */
static unsigned outputs_matched(const struct expectation *ex, const char *console)
{
    unsigned k = 0;
    for (const char *p = console; *p && k < ex->output_count;) {
        const char *e = strchr(p, '\n');
        const char *stop = e ? e : p + strlen(p);
        const char *t = stop;
        while (t > p && t[-1] == '\r')
            t--;
        size_t n = (size_t)(t - p);
        if (n == strlen(ex->output[k]) && !memcmp(p, ex->output[k], n))
            k++;
        p = e ? e + 1 : stop;
    }
    return k;
}

enum expect_judgement expect_judge(const struct expectation *ex, const char *actual_ending,
                                   const char *console, char *why, size_t why_size)
{
    const char *pass_ending = ex->ending[0] ? ex->ending : "exit:0";
    bool ended_as_pass = !strcmp(actual_ending, pass_ending);
    unsigned matched = outputs_matched(ex, console ? console : "");
    bool passed = ended_as_pass && matched == ex->output_count;
    if (why_size)
        why[0] = 0;
    if (ex->outcome == EXPECT_XFAIL) {
        if (passed)
            return ex->xfail_may_pass ? EXPECT_MET : EXPECT_PASSED_INSTEAD;
        if (strcmp(actual_ending, ex->xfail_ending)) {
            snprintf(why, why_size, "expected failure ending %s, got %s", ex->xfail_ending,
                     actual_ending);
            return EXPECT_NOT_MET;
        }
        if (ex->xfail_line[0]) {
            char last[EXPECT_LINE_SIZE];
            expect_last_line(console ? console : "", last, sizeof(last));
            if (!strstr(last, ex->xfail_line)) {
                snprintf(why, why_size, "expected the last console line to contain '%s', got '%s'",
                         ex->xfail_line, last);
                return EXPECT_NOT_MET;
            }
        }
        return EXPECT_MET_XFAIL;
    }
    if (passed)
        return EXPECT_MET;
    if (!ended_as_pass)
        snprintf(why, why_size, "expected ending %s, got %s", pass_ending, actual_ending);
    else
        snprintf(why, why_size, "console output lacks the line '%s'", ex->output[matched]);
    return EXPECT_NOT_MET;
}
