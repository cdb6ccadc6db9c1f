/* source: the text of source lines, for the text outputs. Files are read once. */
#ifndef MEMPROF_ANALYZER_SOURCE_H
#define MEMPROF_ANALYZER_SOURCE_H

#include <stdint.h>

typedef struct source source_t;

/* base: the program's working directory (meta cwd): relative file names are relative to
 * it (else to ours), and a file under it that is not there any more is also looked for
 * under our working directory (a project moved or copied along with its profile). */
source_t *source_new(const char *base);
/* What a file was when the program ran (db.h's sources): a file read whose size or
 * modification time differs is counted, and source_free says so in one line on stderr
 * ("its lines may not match"). */
void source_expect(source_t *s, const char *file, int64_t size, int64_t mtime_ns);
void source_free(source_t *s);
/* Line `line` (1-based) of `file`, whitespace-trimmed, or NULL if the file or the line
 * does not exist. Valid until source_free. */
const char *source_line(source_t *s, const char *file, int line);
/* The same line with its indentation (trailing whitespace removed). */
const char *source_line_raw(source_t *s, const char *file, int line);
/* Number of lines of `file`, -1 if it cannot be read. */
int source_count(source_t *s, const char *file);

#endif
