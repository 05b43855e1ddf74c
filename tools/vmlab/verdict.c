/* verdict.c - expectations vs. outcome for `vmlab check` and `vmlab conformance`. */
#include "verdict.h"

#include <errno.h>
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

void verdict_run(const struct guest_case *gc, const struct backend_ops *backend,
                 const struct machine_config *base, struct verdict *v)
{
    const struct expectation *ex = &gc->expect;
    const char *want_ending = ex->ending[0] ? ex->ending : "exit:0";
    snprintf(v->expected, sizeof(v->expected), "%s%s%s", expect_outcome_name(ex->outcome),
             ex->ending[0] ? " " : "", ex->ending);
    char reason[200] = "";
    if (backend->probe(reason, sizeof(reason)) < 0) {
        v->kind = VERDICT_SKIP;
        snprintf(v->actual, sizeof(v->actual), "not run");
        snprintf(v->detail, sizeof(v->detail), "backend unavailable: %s", reason);
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
    struct machine_result *r = calloc(1, sizeof(*r));
    if (!r) {
        v->kind = VERDICT_FAIL;
        snprintf(v->detail, sizeof(v->detail), "out of memory");
        return;
    }
    /* Keep the guest's console output out of the table, but remember its last line: it is
     * where a self-checking guest says what went wrong. */
    FILE *console = tmpfile();
    config.console_out = console ? console : stdout;
    isolated_run(&config, r);
    char last_line[160] = "";
    if (console) {
        char line[160];
        rewind(console);
        while (fgets(line, sizeof(line), console))
            if (line[0] != '\n')
                snprintf(last_line, sizeof(last_line), "%s", line);
        fclose(console);
        size_t n = strlen(last_line);
        if (n && last_line[n - 1] == '\n')
            last_line[n - 1] = 0;
    }
    expect_ending_of(r, v->actual, sizeof(v->actual));
    bool passed = strcmp(v->actual, want_ending) == 0;
    if (ex->outcome == EXPECT_XFAIL) {
        v->kind = passed ? VERDICT_UNEXPECTED_PASS : VERDICT_XFAIL;
        snprintf(v->detail, sizeof(v->detail), "%s%s%s", ex->reason, r->message[0] ? " | " : "",
                 r->message);
    } else {
        v->kind = passed ? VERDICT_OK : VERDICT_FAIL;
        if (!passed)
            snprintf(v->detail, sizeof(v->detail), "%s%s%s", r->message,
                     r->message[0] && last_line[0] ? " | guest: " : (last_line[0] ? "guest: " : ""),
                     last_line);
    }
    free(r);
}
