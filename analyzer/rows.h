/* rows: the per-location table behind `report` and `stats`' top lines: stacks grouped
 * by location (line, function or file), summed, sorted. */
#ifndef MEMPROF_ANALYZER_ROWS_H
#define MEMPROF_ANALYZER_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

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

/* All rows with at least one allocation, sorted (biggest first). Caller frees. */
rows_row_t *rows_build(profile_t *p, rows_by_t by, rows_sort_t sort, size_t *n_out);

#endif
