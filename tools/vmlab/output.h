/* output.h - how the vmlab commands write strings into their machine-readable formats. */
#ifndef VMLAB_OUTPUT_H
#define VMLAB_OUTPUT_H

#include <stdio.h>

/* A JSON string, quotes included (RFC 8259 section 7: quote, backslash and control
 * characters escaped). */
void out_json_string(FILE *out, const char *s);
/* A CSV field (RFC 4180): always quoted, inner quotes doubled. */
void out_csv_field(FILE *out, const char *s);

#endif
