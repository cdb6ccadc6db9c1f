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

void rows_acc_add(rows_acc_t *a, uint32_t loc, const rows_row_t *add)
{
	if (loc >= a->cap) {
		size_t ncap = a->cap ? a->cap : 256;
		while (ncap <= loc)
			ncap *= 2;
		a->sums = realloc(a->sums, ncap * sizeof *a->sums);
		a->seen = realloc(a->seen, ncap);
		if (!a->sums || !a->seen)
			abort();
		memset(a->sums + a->cap, 0, (ncap - a->cap) * sizeof *a->sums);
		memset(a->seen + a->cap, 0, ncap - a->cap);
		a->cap = ncap;
	}
	rows_row_t *r = &a->sums[loc];
	a->seen[loc] = 1;
	r->loc = loc;
	r->peak_bytes += add->peak_bytes;
	r->allocated_bytes += add->allocated_bytes;
	r->allocations += add->allocations;
	r->end_bytes += add->end_bytes;
	r->leaked_bytes += add->leaked_bytes;
	r->temp_count += add->temp_count;
	r->temp_bytes += add->temp_bytes;
}

rows_row_t *rows_acc_finish(rows_acc_t *a, const locate_t *loc, rows_sort_t sort, size_t *n_out)
{
	rows_row_t *sums = a->sums ? a->sums : malloc(sizeof *sums);
	if (!sums)
		abort();
	size_t n = 0;
	for (size_t i = 0; i < a->cap; i++)
		if (a->seen[i])
			sums[n++] = sums[i];
	free(a->seen);
	memset(a, 0, sizeof *a);
	rows_sort(loc, sums, n, sort);
	*n_out = n;
	return sums;
}

rows_row_t *rows_build(profile_t *p, rows_by_t by, rows_sort_t sort, size_t *n_out)
{
	const pass_t *ps = &p->pass;
	rows_acc_t acc = {0};
	for (uint32_t s = 0; s < ps->n_stacks; s++) {
		const pass_stack_t *st = pass_stack(ps, s);
		if (!st->allocations)
			continue;
		uint32_t loc = locate_stack(p->locate, s);
		if (by != ROWS_BY_LINE) {
			const locate_loc_t *l = locate_get(p->locate, loc);
			loc = locate_intern(p->locate, l->file, 0, by == ROWS_BY_FUNCTION ? l->function : "");
		}
		rows_row_t r = {
			.peak_bytes = st->peak_bytes,
			.allocated_bytes = st->allocated_bytes,
			.allocations = st->allocations,
			.end_bytes = st->end_bytes,
			.leaked_bytes = st->live_bytes,
			.temp_count = st->temp_count,
			.temp_bytes = st->temp_bytes,
		};
		rows_acc_add(&acc, loc, &r);
	}
	return rows_acc_finish(&acc, p->locate, sort, n_out);
}

void rows_sort(const locate_t *loc, rows_row_t *rows, size_t n, rows_sort_t sort)
{
	rows_sort_key = sort;
	rows_sort_loc = loc;
	qsort(rows, n, sizeof *rows, rows_cmp);
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
