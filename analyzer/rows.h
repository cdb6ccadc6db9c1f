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

#endif
