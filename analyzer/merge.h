/* merge: several processes' profiles read as one program (`memprof report A.db B.db
 * ...`, and every other command: a parent and its workers, every file of a run).
 *
 * Each profile keeps its own pass and locator; the passes run side by side, an event at
 * a time in the order of one clock for all, so that the heaps of the processes alive at
 * each moment add up, and each stack's "peak" figure is what it held when that sum was
 * at its highest (a process's memory counts from its first event to its end: the last
 * event or RSS sample it wrote; what it never freed is gone after that). Allocated
 * bytes, allocations and what was live at each process's own end add up as they are.
 * Rows group by location across processes (file, line and function; by function or by
 * file as asked). Over time (timeseries, plot): at every process's RSS samples, the RSS
 * of the processes alive then and their heaps, added up.
 *
 * The clock: files of one machine's processes stamp with the same TSC (or monotonic
 * clock), and their starts agree with it: those ticks order the events exactly. Files
 * whose ticks do not agree with their wall-clock starts (another boot, another machine)
 * are placed by their wall-clock start, to within the clock's precision. */
#ifndef MEMPROF_ANALYZER_MERGE_H
#define MEMPROF_ANALYZER_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "profile.h"
#include "rows.h"

/* The processes together at one of their RSS samples: the RSS of each process alive
 * then (its latest sample) and all their heaps, added up. */
typedef struct merge_sample {
	double t; /* seconds after the first start */
	uint64_t rss, heap;
	bool heap_known; /* false once a process alive then had stopped recording early */
} merge_sample_t;

typedef struct merge {
	profile_t *p; /* the n profiles, in the order given */
	size_t n;
	double *start_s;   /* each process's start, seconds after the first start */
	double *end_s;     /* and its end */
	uint64_t peak_heap; /* the processes' heaps together at their highest */
	double peak_time_s; /* when (seconds after the first start) */
	double duration_s;  /* from the first start to the last end */
	bool by_ticks;      /* the files' ticks agreed (else placed by wall-clock starts) */
	size_t first;       /* the process that started first */
	merge_sample_t *samples; /* every process's samples, in time order */
	size_t n_samples;
	/* the passes' figures added up (allocations, frees, bytes, temporary ones, never
	 * freed, live at each one's end, allocators, sizes); peak_heap is the processes'
	 * together, has_end true when every process has an end marker, sample_bytes > 0
	 * when any process was sampled; its tables (stacks, sample_heap) are NULL */
	pass_t total;
	uint64_t dropped_events; /* the files' dropped events, added up */
} merge_t;

/* Opens every file and runs the passes. Returns 0; or -1 with one line "memprof: FILE:
 * reason" printed on stderr (m must still be passed to merge_close). */
int merge_open(merge_t *m, char *const *paths, size_t n, const char *focus);
void merge_close(merge_t *m);

/* The rows of all processes grouped by location (in the first profile's locator, whose
 * ids they carry), sorted. Caller frees. */
rows_row_t *merge_rows(merge_t *m, rows_by_t by, rows_sort_t sort, size_t *n_out);
/* The source files' text for every profile's files. */
struct source *merge_source(const merge_t *m);

void merge_text_header(FILE *f, const merge_t *m, const char *what);
/* `"processes":[...],"duration_s":...` members (no braces). */
void merge_json_header(FILE *f, const merge_t *m);

#endif
