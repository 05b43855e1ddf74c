/* verdict.c - expectations vs. outcome for `vmlab check` and `vmlab conformance`. */
#define _GNU_SOURCE
#include "verdict.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isolated_run.h"
#include "vmm/elf_loader.h"

const char *verdict_name(enum verdict_kind kind)
{
    switch (kind) {
    case VERDICT_OK:
        return "ok";
    case VERDICT_XFAIL:
        return "xfail";
    case VERDICT_FAIL:
        return "FAIL";
    case VERDICT_UNEXPECTED_PASS:
        return "UNEXPECTED-PASS";
    default:
        return "skip";
    }
}

bool verdict_is_unexpected(enum verdict_kind kind)
{
    return kind == VERDICT_FAIL || kind == VERDICT_UNEXPECTED_PASS;
}

int verdict_prepare(const char *path, const struct backend_ops *backend, struct guest_case *gc,
                    struct verdict *v)
{
    memset(gc, 0, sizeof(*gc));
    memset(v, 0, sizeof(*v));
    gc->path = path;
    uint8_t *data = NULL;
    size_t size = 0;
    char err[200];
    int rc = elf_read_file(path, ELF_LOADER_MAX_FILE_SIZE, &data, &size, err, sizeof(err));
    if (rc == 0) {
        struct elf_image img;
        rc = elf_parse(data, size, &img, err, sizeof(err));
        if (rc == 0) {
            unsigned malformed = 0;
            expect_resolve(img.expect, img.expect_size, backend, &gc->expect, &malformed);
            gc->has_expect = img.expect != NULL;
            gc->malformed = malformed;
            if (malformed)
                snprintf(v->detail, sizeof(v->detail), "%u malformed expectation records",
                         malformed);
        }
    }
    free(data);
    if (rc < 0)
        snprintf(v->detail, sizeof(v->detail), "%s", err);
    return rc;
}

/* A file for the guest's console that the isolated child writes and we read back: an
 * anonymous memory file (no /tmp needed: a student account may have none it can write), else
 * a temporary file. */
static FILE *console_capture(void)
{
    int fd = memfd_create("vmlab-console", MFD_CLOEXEC);
    if (fd >= 0) {
        FILE *f = fdopen(fd, "w+");
        if (f)
            return f;
        close(fd);
    }
    return tmpfile();
}

/* The console output of the run, NUL-terminated (at most CONSOLE_MAX bytes: a guest that
 * prints more keeps its first bytes and, separately, its last line). */
#define CONSOLE_MAX (1u << 20)
static char *console_read(FILE *f, char *last_line, size_t last_size)
{
    char *text = malloc(CONSOLE_MAX + 1);
    if (!text)
        return NULL;
    rewind(f);
    size_t n = fread(text, 1, CONSOLE_MAX, f);
    text[n] = 0;
    expect_last_line(text, last_line, last_size);
    if (n == CONSOLE_MAX) { /* more than that: the last line is near the end of the file */
        char tail[4096];
        if (fseek(f, -(long)(sizeof(tail) - 1), SEEK_END) == 0) {
            size_t t = fread(tail, 1, sizeof(tail) - 1, f);
            tail[t] = 0;
            expect_last_line(tail, last_line, last_size);
        }
    }
    return text;
}

void verdict_run(const struct guest_case *gc, const struct backend_ops *backend,
                 const struct machine_config *base, struct verdict *v)
{
    const struct expectation *ex = &gc->expect;
    if (ex->outcome == EXPECT_XFAIL)
        snprintf(v->expected, sizeof(v->expected), "%s %s",
                 ex->xfail_may_pass ? "pass/xfail" : "xfail", ex->xfail_ending);
    else
        snprintf(v->expected, sizeof(v->expected), "%s%s%s", expect_outcome_name(ex->outcome),
                 ex->ending[0] ? " " : "", ex->ending);
    char reason[200] = "";
    if (backend->probe(reason, sizeof(reason)) < 0) {
        v->kind = VERDICT_SKIP;
        snprintf(v->actual, sizeof(v->actual), "not run");
        snprintf(v->detail, sizeof(v->detail), "backend unavailable: %s", reason);
        return;
    }
    if (gc->malformed) { /* a mistake in the test itself: never a pass, never a skip */
        v->kind = VERDICT_FAIL;
        snprintf(v->actual, sizeof(v->actual), "not run");
        snprintf(v->detail, sizeof(v->detail),
                 "%u malformed expectation records (format: vmm/expect.h)", gc->malformed);
        return;
    }
    if (ex->outcome == EXPECT_SKIP) {
        v->kind = VERDICT_SKIP;
        snprintf(v->actual, sizeof(v->actual), "not run");
        snprintf(v->detail, sizeof(v->detail), "%s", ex->reason);
        return;
    }
    struct machine_config config = *base;
    config.backend = backend;
    config.image_path = gc->path;
    if (ex->timeout_s > 0)
        config.timeout_s = ex->timeout_s;
    if (base->timeout_scale > 0)
        config.timeout_s *= base->timeout_scale;
    struct machine_result *r = calloc(1, sizeof(*r));
    /* Keep the guest's console output out of the table, but judge it (output records) and
     * remember its last line: it is where a self-checking guest says what went wrong. */
    FILE *console = console_capture();
    if (!r || !console) {
        v->kind = VERDICT_FAIL;
        snprintf(v->actual, sizeof(v->actual), "not run");
        snprintf(v->detail, sizeof(v->detail), "cannot run the guest: %s",
                 !r ? "out of memory" : "no temporary file for its console output");
        free(r);
        if (console)
            fclose(console);
        return;
    }
    config.console_out = console;
    isolated_run(&config, r);
    char last_line[EXPECT_LINE_SIZE] = "";
    char *text = console_read(console, last_line, sizeof(last_line));
    fclose(console);
    expect_ending_of(r, v->actual, sizeof(v->actual));
    char why[400] = "";
    enum expect_judgement j =
        text ? expect_judge(ex, v->actual, text, why, sizeof(why)) : EXPECT_NOT_MET;
    if (!text)
        snprintf(why, sizeof(why), "out of memory reading the console output");
    free(text);
    const char *sep = r->message[0] ? " | " : "";
    switch (j) {
    case EXPECT_MET:
        v->kind = VERDICT_OK;
        break;
    case EXPECT_MET_XFAIL:
        v->kind = VERDICT_XFAIL;
        snprintf(v->detail, sizeof(v->detail), "%s%s%s", ex->reason, sep, r->message);
        break;
    case EXPECT_PASSED_INSTEAD:
        v->kind = VERDICT_UNEXPECTED_PASS;
        snprintf(v->detail, sizeof(v->detail), "passed, but expected to fail: %s", ex->reason);
        break;
    default:
        v->kind = VERDICT_FAIL;
        if (last_line[0] && strstr(why, last_line)) /* already quoted in why */
            last_line[0] = 0;
        snprintf(v->detail, sizeof(v->detail), "%s%s%s%s%s", why, sep, r->message,
                 last_line[0] ? " | guest: " : "", last_line);
        break;
    }
    free(r);
}
