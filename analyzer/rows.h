/* rows: the per-location table behind `report` and `stats`' top lines: stacks grouped
 * by location (line, function or file), summed, sorted. */
#ifndef MEMPROF_ANALYZER_ROWS_H
#define MEMPROF_ANALYZER_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "profile.h"
#include "source.h"

typedef enum { ROWS_BY_LINE, ROWS_BY_FUNCTION, ROWS_BY_FILE } rows_by_t;
typedef enum {
	ROWS_SORT_PEAK,
	ROWS_SORT_ALLOCATED,
	ROWS_SORT_COUNT,
	ROWS_SORT_END,
	ROWS_SORT_TEMPORARY, /* temporary allocations, then their bytes */
} rows_sort_t;

typedef struct rows_row {
	uint32_t loc; /* locate id of the grouped location */
	uint64_t peak_bytes;
	uint64_t allocated_bytes;
	uint64_t allocations;
	uint64_t end_bytes;
	uint64_t leaked_bytes;
	uint64_t temp_count; /* temporary allocations (pass.c) */
	uint64_t temp_bytes;
} rows_row_t;

/* Text outputs: a row's location (file:line function, function (module), or the file
 * alone) and, below it indented by `indent`, the source line's text when src has it. */
void rows_text_location(FILE *f, const locate_loc_t *l, bool file_only, source_t *src, int indent);

/* Machine outputs: a row's location as the csv fields `file,line,function` and as the
 * json members `"file":…,"line":…,"function":…`. */
void rows_csv_location(FILE *f, const locate_loc_t *l);
void rows_json_location(FILE *f, const locate_loc_t *l);

/* All rows with at least one allocation, sorted (biggest first). Caller frees. */
rows_row_t *rows_build(profile_t *p, rows_by_t by, rows_sort_t sort, size_t *n_out);
/* Rows summed by location id, as they come (rows_build, merge.c): rows_acc_add adds a
 * row's figures to its location's (`add->loc` is not read); rows_acc_finish gives the
 * sorted rows (caller frees) and empties the accumulator. Start from {0}. */
typedef struct rows_acc {
	rows_row_t *sums; /* indexed by location id */
	uint8_t *seen;
	size_t cap;
} rows_acc_t;
void rows_acc_add(rows_acc_t *a, uint32_t loc, const rows_row_t *add);
rows_row_t *rows_acc_finish(rows_acc_t *a, const locate_t *loc, rows_sort_t sort, size_t *n_out);

/* Sorts rows whose locations are loc's as rows_build does. */
void rows_sort(const locate_t *loc, rows_row_t *rows, size_t n, rows_sort_t sort);

#endif
