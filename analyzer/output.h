/* output: where results go (stdout or -o FILE) and the escaping csv, json and xml need. */
#ifndef MEMPROF_ANALYZER_OUTPUT_H
#define MEMPROF_ANALYZER_OUTPUT_H

#include <stdint.h>
#include <stdio.h>

/* stdout when path is NULL or "-". Returns NULL with errno set. */
FILE *output_open(const char *path);
/* Flushes and closes (not stdout's fd); returns 0 or -1 if anything failed to be written. */
int output_close(FILE *f);

/* A CSV field: quoted (with "" doubling) only when it holds , " CR or LF. */
void output_csv_str(FILE *f, const char *s);
/* A JSON string with quotes; control characters escaped, other bytes as they are. */
void output_json_str(FILE *f, const char *s);
/* Text for XML (SVG) content or attribute values: markup characters escaped; control
 * characters and bytes that are not valid UTF-8 become '?', so the document stays
 * well-formed whatever the profile holds. */
void output_xml_str(FILE *f, const char *s);
/* A JSON number for a double: fixed 6 decimals, never nan/inf. */
void output_json_double(FILE *f, double v);

#endif
