/* output: where results go (stdout or -o FILE) and the escaping csv, json and xml need. */
#ifndef MEMPROF_ANALYZER_OUTPUT_H
#define MEMPROF_ANALYZER_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Where a command writes: stdout when path is NULL or "-"; a regular file (or a new one)
 * is written as a temporary file beside it that output_close renames over it, so that a
 * command that fails leaves what was there; anything else (a device, a pipe, a symbolic
 * link) directly. */
typedef struct output {
	FILE *f;
	const char *path;
	char *tmp;   /* the temporary file, or NULL */
	FILE *under; /* output_text_filter: where f's bytes go, or NULL */
} output_t;

/* 0, or -1 with errno set. */
int output_open(output_t *o, const char *path);
/* Text for people: from now on the control characters a profile may hold in a name
 * (a file name, a command line) and that a terminal would act on (ESC sequences, CR,
 * BS...) are written as '?'; LF and TAB pass. 0, or -1 (f left as it was). */
int output_text_filter(output_t *o);
/* Flushes and closes (not stdout's fd); with ok, puts the file in place. Returns 0, or
 * -1 if anything failed to be written (the file then left as it was). */
int output_close(output_t *o, bool ok);
/* Whether path names the same file as `other` (an output that would overwrite its input). */
bool output_same_file(const char *path, const char *other);

/* A CSV field: quoted (with "" doubling) only when it holds , " CR or LF. */
void output_csv_str(FILE *f, const char *s);
/* A JSON string with quotes; control characters escaped, bytes that are not valid UTF-8
 * as U+FFFD (JSON is UTF-8), the rest as they are. */
void output_json_str(FILE *f, const char *s);
/* Text for XML (SVG) content or attribute values: markup characters escaped; control
 * characters and bytes that are not valid UTF-8 become '?', so the document stays
 * well-formed whatever the profile holds. */
void output_xml_str(FILE *f, const char *s);
/* The length of the valid UTF-8 sequence at s (1-4; 1 for ASCII, NUL included), or 0
 * if s does not start one (overlong forms, surrogates, U+FFFE/U+FFFF, past U+10FFFF). */
int output_utf8_len(const unsigned char *s);
/* A JSON number for a double: fixed 6 decimals, never nan/inf. */
void output_json_double(FILE *f, double v);

#endif
