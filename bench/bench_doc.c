/* bench_doc.c - index.md and index.html written together, and the results.json helpers.
 *
 * An experiment describes its section once (headings, paragraphs, bullet items, figures,
 * tables); each call writes the Markdown and the HTML form, so the two documents cannot
 * drift apart. Text is plain: escaped for HTML, '|' escaped in Markdown table cells, and
 * `**bold**` the only markup.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"

/* Write `s`; html: escape & < > and turn **x** into <b>x</b>; md table cell: escape '|'. */
static void put_text(FILE *f, const char *s, bool html, bool md_cell)
{
    bool bold = false;
    for (; *s; s++) {
        if (s[0] == '*' && s[1] == '*') {
            if (html)
                fputs(bold ? "</b>" : "<b>", f);
            else
                fputs("**", f);
            bold = !bold;
            s++;
            continue;
        }
        if (html && *s == '&')
            fputs("&amp;", f);
        else if (html && *s == '<')
            fputs("&lt;", f);
        else if (html && *s == '>')
            fputs("&gt;", f);
        else if (!html && md_cell && *s == '|')
            fputs("\\|", f);
        else if (!html && md_cell && *s == '\n')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
    if (bold && html)
        fputs("</b>", f);
}

static char *vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

static void end_list(struct bench_doc *d)
{
    if (!d->in_list)
        return;
    fputs("</ul>\n", d->html);
    fputc('\n', d->md);
    d->in_list = false;
}

void bench_doc_begin(struct bench_doc *d, const char *title)
{
    fprintf(d->html,
            "<!doctype html><html><head><meta charset='utf-8'><title>%s</title>"
            "<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto;line-height:1.4}"
            "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;"
            "padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
            "img{max-width:100%%}</style></head><body>\n<h1>",
            title);
    put_text(d->html, title, true, false);
    fputs("</h1>\n", d->html);
    fprintf(d->md, "# %s\n\n", title);
}

void bench_doc_end(struct bench_doc *d)
{
    end_list(d);
    fputs("</body></html>\n", d->html);
}

void bench_doc_heading(struct bench_doc *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    end_list(d);
    fputs("<h2>", d->html);
    put_text(d->html, s ? s : "", true, false);
    fputs("</h2>\n", d->html);
    fprintf(d->md, "## %s\n\n", s ? s : "");
    free(s);
}

void bench_doc_para(struct bench_doc *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    end_list(d);
    fputs("<p>", d->html);
    put_text(d->html, s ? s : "", true, false);
    fputs("</p>\n", d->html);
    put_text(d->md, s ? s : "", false, false);
    fputs("\n\n", d->md);
    free(s);
}

void bench_doc_item(struct bench_doc *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    if (!d->in_list)
        fputs("<ul>\n", d->html);
    d->in_list = true;
    fputs("<li>", d->html);
    put_text(d->html, s ? s : "", true, false);
    fputs("</li>\n", d->html);
    fputs("- ", d->md);
    put_text(d->md, s ? s : "", false, true);
    fputc('\n', d->md);
    free(s);
}

void bench_doc_figure(struct bench_doc *d, const char *png, const char *alt)
{
    end_list(d);
    if (d->figure_count < sizeof(d->figures) / sizeof(d->figures[0]))
        snprintf(d->figures[d->figure_count++], sizeof(d->figures[0]), "%s", png);
    fprintf(d->html, "<p><a href='%s'><img src='%s' alt='", png, png);
    put_text(d->html, alt, true, false);
    fputs("'></a></p>\n", d->html);
    fprintf(d->md, "![%s](%s)\n\n", alt, png);
}

void bench_doc_table(struct bench_doc *d, unsigned columns, const char *const *headers)
{
    end_list(d);
    d->columns = columns;
    d->cell = 0;
    fputs("<table><tr>", d->html);
    fputc('|', d->md);
    for (unsigned i = 0; i < columns; i++) {
        fputs("<th>", d->html);
        put_text(d->html, headers[i], true, false);
        fputs("</th>", d->html);
        fputc(' ', d->md);
        put_text(d->md, headers[i], false, true);
        fputs(" |", d->md);
    }
    fputs("</tr>\n", d->html);
    fputs("\n|", d->md);
    for (unsigned i = 0; i < columns; i++)
        fputs("---|", d->md);
    fputc('\n', d->md);
}

void bench_doc_cell(struct bench_doc *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    if (d->cell == 0) {
        fputs("<tr>", d->html);
        fputc('|', d->md);
    }
    fputs("<td>", d->html);
    put_text(d->html, s ? s : "", true, false);
    fputs("</td>", d->html);
    fputc(' ', d->md);
    put_text(d->md, s ? s : "", false, true);
    fputs(" |", d->md);
    free(s);
    if (++d->cell == d->columns) {
        fputs("</tr>\n", d->html);
        fputc('\n', d->md);
        d->cell = 0;
    }
}

void bench_doc_table_end(struct bench_doc *d)
{
    while (d->cell) /* complete a short last row */
        bench_doc_cell(d, "%s", "");
    fputs("</table>\n", d->html);
    fputc('\n', d->md);
}

/* ---- results.json ----------------------------------------------------------------------- */

void bench_json_key(FILE *f, const char *key)
{
    fputs(",\n  ", f);
    bench_json_str(f, key);
    fputs(": ", f);
}

void bench_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

void bench_json_stats(FILE *f, const struct bench_stats *s)
{
    fprintf(
        f,
        "{\"n\": %u, \"median\": %.3f, \"q1\": %.3f, \"q3\": %.3f, \"min\": %.3f, \"max\": %.3f}",
        s->n, s->median, s->q1, s->q3, s->min, s->max);
}

void bench_json_not_measured(FILE *f, const char *why)
{
    fputs("{\"not_measured\": ", f);
    bench_json_str(f, why);
    fputc('}', f);
}
