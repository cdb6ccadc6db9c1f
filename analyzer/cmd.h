/* The commands: each is a view of one analyzed profile, written to an open stream.
 * main.c parses options into cmd_opts_t and dispatches. */
#ifndef MEMPROF_ANALYZER_CMD_H
#define MEMPROF_ANALYZER_CMD_H

#include <stddef.h>
#include <stdio.h>

#include "profile.h"
#include <stdbool.h>

#include "rows.h"

typedef struct cmd_opts {
	const char *format; /* validated against the command's list */
	const char *output; /* -o; NULL = stdout */
	const char *focus;
	const char *target; /* the command's positional argument (lines: FILE.py[:FUNCTION]) */
	rows_sort_t sort;
	rows_by_t by;
	long limit; /* -1 = the format's default, 0 = unlimited */
	int metric; /* flamegraph: flame_metric_t (flametree.h) */
	bool never_freed; /* leaks: what was never freed, not what was live at the end */
} cmd_opts_t;

/* Each returns 0 (write errors are caught when main closes the stream), or 1 after
 * printing one line "memprof: reason" on stderr. `m`: several processes' profiles read
 * together (merge.h), p being its first; else NULL, and p the one profile. */
struct merge;
int stats_run(profile_t *p, struct merge *m, const cmd_opts_t *o, FILE *out);
int report_run(profile_t *p, struct merge *m, const cmd_opts_t *o, FILE *out);
int timeseries_run(profile_t *p, struct merge *m, const cmd_opts_t *o, FILE *out);
int stacks_run(profile_t *p, struct merge *m, const cmd_opts_t *o, FILE *out, int leaks);
int temporary_run(profile_t *p, struct merge *m, const cmd_opts_t *o, FILE *out);
int lines_run(profile_t *p, struct merge *m, const cmd_opts_t *o, FILE *out);
int flamegraph_run(profile_t *p, struct merge *m, const cmd_opts_t *o, FILE *out);
int plot_run(profile_t *p, struct merge *m, const cmd_opts_t *o, FILE *out);

/* Writes one rows_row_t as a JSON object. */
void report_json_row(FILE *f, const profile_t *p, const rows_row_t *r);

#endif
