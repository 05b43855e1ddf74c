/* test_bench_doc.c - the report's documents: one description written as Markdown and as HTML,
 * text escaped for each (bench/bench_doc.c). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/bench_internal.h"

struct docs {
    struct bench_doc d;
    char *md, *html;
    size_t md_len, html_len;
};

static void open_docs(struct docs *x)
{
    memset(x, 0, sizeof(*x));
    x->d.md = open_memstream(&x->md, &x->md_len);
    x->d.html = open_memstream(&x->html, &x->html_len);
    assert_non_null(x->d.md);
    assert_non_null(x->d.html);
}

static void close_docs(struct docs *x)
{
    fclose(x->d.md);
    fclose(x->d.html);
}

static void free_docs(struct docs *x)
{
    free(x->md);
    free(x->html);
}

static void text_is_escaped(void **unused)
{
    (void)unused;
    struct docs x;
    open_docs(&x);
    bench_doc_heading(&x.d, "A < B & C");
    bench_doc_para(&x.d, "m* = B / (h - p) for **%s** <b>", "cli");
    close_docs(&x);
    assert_non_null(strstr(x.md, "## A < B & C\n"));
    assert_non_null(strstr(x.md, "m* = B / (h - p) for **cli** <b>\n"));
    assert_non_null(strstr(x.html, "<h2>A &lt; B &amp; C</h2>"));
    assert_non_null(strstr(x.html, "<p>m* = B / (h - p) for <b>cli</b> &lt;b&gt;</p>"));
    free_docs(&x);
}

static void tables_and_lists(void **unused)
{
    (void)unused;
    struct docs x;
    open_docs(&x);
    bench_doc_item(&x.d, "one");
    bench_doc_item(&x.d, "two");
    bench_doc_table(&x.d, 2, (const char *[]){"class", "note"});
    bench_doc_cell(&x.d, "cli");
    bench_doc_cell(&x.d, "a | b");
    bench_doc_cell(&x.d, "sti"); /* a short last row is completed */
    bench_doc_table_end(&x.d);
    bench_doc_figure(&x.d, "f.png", "a figure");
    close_docs(&x);
    /* one list, closed before the table */
    assert_non_null(strstr(x.md, "- one\n- two\n\n| class | note |\n|---|---|\n"));
    assert_non_null(strstr(x.md, "| cli | a \\| b |\n| sti |  |\n"));
    assert_non_null(strstr(x.html, "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n<table>"));
    assert_non_null(strstr(x.html, "<tr><td>cli</td><td>a | b</td></tr>"));
    assert_non_null(strstr(x.html, "<tr><td>sti</td><td></td></tr>"));
    assert_non_null(strstr(x.md, "![a figure](f.png)"));
    assert_non_null(strstr(x.html, "<img src='f.png'"));
    assert_int_equal(x.d.figure_count, 1);
    assert_string_equal(x.d.figures[0], "f.png");
    free_docs(&x);
}

static void json_strings(void **unused)
{
    (void)unused;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    bench_json_str(f, "a\"b\\c\nd");
    bench_json_key(f, "k");
    bench_json_not_measured(f, "why");
    fclose(f);
    assert_string_equal(buf, "\"a\\\"b\\\\c\\u000ad\",\n  \"k\": {\"not_measured\": \"why\"}");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(text_is_escaped),
                                       cmocka_unit_test(tables_and_lists),
                                       cmocka_unit_test(json_strings)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
