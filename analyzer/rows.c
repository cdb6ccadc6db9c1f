/* rows: group stacks by location. Grouping by function or file re-interns each stack's
 * line location with the line (and for files the function) blanked, so the grouped
 * location ids index the same sums array. */
#include "rows.h"
#include "output.h"

#include <stdlib.h>
#include <string.h>

static rows_sort_t rows_sort_key;
static const locate_t *rows_sort_loc;

static int rows_cmp_u64(uint64_t a, uint64_t b)
{
	return a > b ? -1 : a < b ? 1 : 0; /* descending */
}

static uint64_t rows_primary(const rows_row_t *r)
{
	switch (rows_sort_key) {
	case ROWS_SORT_ALLOCATED: return r->allocated_bytes;
	case ROWS_SORT_COUNT: return r->allocations;
	case ROWS_SORT_END: return r->end_bytes;
	case ROWS_SORT_TEMPORARY: return r->temp_count;
	default: return r->peak_bytes;
	}
}

static int rows_cmp(const void *pa, const void *pb)
{
	const rows_row_t *a = pa, *b = pb;
	int c;
	if ((c = rows_cmp_u64(rows_primary(a), rows_primary(b))))
		return c;
	if (rows_sort_key == ROWS_SORT_TEMPORARY && (c = rows_cmp_u64(a->temp_bytes, b->temp_bytes)))
		return c;
	if ((c = rows_cmp_u64(a->allocated_bytes, b->allocated_bytes)))
		return c;
	if ((c = rows_cmp_u64(a->peak_bytes, b->peak_bytes)))
		return c;
	const locate_loc_t *la = locate_get(rows_sort_loc, a->loc), *lb = locate_get(rows_sort_loc, b->loc);
	if ((c = strcmp(la->file, lb->file)))
		return c;
	if (la->line != lb->line)
		return la->line < lb->line ? -1 : 1;
	return strcmp(la->function, lb->function);
}

rows_row_t *rows_build(profile_t *p, rows_by_t by, rows_sort_t sort, size_t *n_out)
{
	const pass_t *ps = &p->pass;
	size_t cap = 256;
	rows_row_t *sums = calloc(cap, sizeof *sums);
	uint8_t *seen = calloc(cap, 1);
	if (!sums || !seen)
		abort();
	for (uint32_t s = 0; s < ps->n_stacks; s++) {
		const pass_stack_t *st = &ps->stacks[s];
		if (!st->allocations)
			continue;
		uint32_t loc = locate_stack(p->locate, s);
		if (by != ROWS_BY_LINE) {
			const locate_loc_t *l = locate_get(p->locate, loc);
			loc = locate_intern(p->locate, l->file, 0, by == ROWS_BY_FUNCTION ? l->function : "");
		}
		if (loc >= cap) {
			size_t ncap = cap;
			while (ncap <= loc)
				ncap *= 2;
			sums = realloc(sums, ncap * sizeof *sums);
			seen = realloc(seen, ncap);
			if (!sums || !seen)
				abort();
			memset(sums + cap, 0, (ncap - cap) * sizeof *sums);
			memset(seen + cap, 0, ncap - cap);
			cap = ncap;
		}
		rows_row_t *r = &sums[loc];
		seen[loc] = 1;
		r->loc = loc;
		r->peak_bytes += st->peak_bytes;
		r->allocated_bytes += st->allocated_bytes;
		r->allocations += st->allocations;
		r->end_bytes += st->end_bytes;
		r->leaked_bytes += st->live_bytes;
		r->temp_count += st->temp_count;
		r->temp_bytes += st->temp_bytes;
	}
	size_t n = 0;
	for (size_t i = 0; i < cap; i++)
		if (seen[i])
			sums[n++] = sums[i];
	free(seen);
	rows_sort_key = sort;
	rows_sort_loc = p->locate;
	qsort(sums, n, sizeof *sums, rows_cmp);
	*n_out = n;
	return sums;
}

void rows_csv_location(FILE *f, const locate_loc_t *l)
{
	output_csv_str(f, l->file);
	fprintf(f, ",%d,", l->line);
	output_csv_str(f, l->function);
}

void rows_json_location(FILE *f, const locate_loc_t *l)
{
	fputs("\"file\":", f);
	output_json_str(f, l->file);
	fprintf(f, ",\"line\":%d,\"function\":", l->line);
	output_json_str(f, l->function);
}

void rows_text_location(FILE *f, const locate_loc_t *l, bool file_only, source_t *src, int indent)
{
	if (file_only || !l->function[0])
		fprintf(f, "%s\n", l->file);
	else if (l->line > 0)
		fprintf(f, "%s:%d %s\n", l->file, l->line, l->function);
	else
		fprintf(f, "%s (%s)\n", l->function, l->file);
	const char *text = src ? source_line(src, l->file, l->line) : NULL;
	if (text && *text)
		fprintf(f, "%*s%s\n", indent, "", text);
}
