/* temporary: allocations freed almost at once, by line. An allocation is temporary when
 * the thread that made it frees it before making its next allocation (pass.c); such
 * churn costs time in the allocator without ever holding memory. Largest count first.
 * Several processes' files (merge.h): their rows and totals added up. */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "merge.h"
#include "output.h"
#include "source.h"
#include "units.h"

#define TEMPORARY_TEXT_LIMIT 30

/* One profile, or several processes' (m; p is its first profile, whose locator the rows
 * use). */
typedef struct temporary_of {
	const profile_t *p;
	const merge_t *m;
	uint64_t allocations, temporary, temporary_bytes;
} temporary_of_t;

static double temporary_percent(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void temporary_csv(FILE *f, const profile_t *p, const rows_row_t *rows, size_t n)
{
	fputs("file,line,function,temporary_allocations,temporary_bytes,allocations\n", f);
	for (size_t i = 0; i < n; i++) {
		rows_csv_location(f, locate_get(p->locate, rows[i].loc));
		fprintf(f, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", rows[i].temp_count, rows[i].temp_bytes,
			rows[i].allocations);
	}
}

static void temporary_json(FILE *f, const temporary_of_t *t, const rows_row_t *rows, size_t n, size_t total)
{
	const profile_t *p = t->p;
	fputc('{', f);
	if (t->m)
		merge_json_header(f, t->m);
	else
		profile_json_header(f, p);
	fprintf(f, ",\"allocations\":%" PRIu64 ",\"temporary_allocations\":%" PRIu64
		   ",\"temporary_bytes\":%" PRIu64 ",\"rows_total\":%zu,\"rows\":[",
		t->allocations, t->temporary, t->temporary_bytes, total);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? ",\n {" : "\n {", f);
		rows_json_location(f, locate_get(p->locate, rows[i].loc));
		fprintf(f, ",\"temporary_allocations\":%" PRIu64 ",\"temporary_bytes\":%" PRIu64
			   ",\"allocations\":%" PRIu64 "}",
			rows[i].temp_count, rows[i].temp_bytes, rows[i].allocations);
	}
	fputs("\n]}\n", f);
}

static void temporary_text(FILE *f, const temporary_of_t *t, const rows_row_t *rows, size_t n, size_t total)
{
	char b1[UNITS_BUF], b2[UNITS_BUF], b3[UNITS_BUF];
	const profile_t *p = t->p;
	if (t->m)
		merge_text_header(f, t->m, "temporary");
	else
		profile_text_header(f, p, "temporary");
	fprintf(f, "%s temporary allocations (%.1f%% of %s), %s: freed by their thread before its next allocation\n\n",
		units_count(b1, t->temporary), temporary_percent(t->temporary, t->allocations),
		units_count(b2, t->allocations), units_bytes(b3, t->temporary_bytes));
	if (total == 0) {
		fputs("no temporary allocations\n", f);
		return;
	}
	source_t *src = t->m ? merge_source(t->m) : profile_source(p);
	fprintf(f, "%10s %8s %10s  %s\n", "TEMPORARY", "% ALLOCS", "BYTES", "LOCATION");
	for (size_t i = 0; i < n; i++) {
		const rows_row_t *r = &rows[i];
		const locate_loc_t *l = locate_get(p->locate, r->loc);
		fprintf(f, "%10s %7.1f%% %10s  ", units_count(b1, r->temp_count),
			temporary_percent(r->temp_count, r->allocations), units_bytes(b2, r->temp_bytes));
		rows_text_location(f, l, false, src, 32);
	}
	if (n < total)
		fprintf(f, "... %zu more locations (--limit=0 shows all)\n", total - n);
	source_free(src);
}

int temporary_run(profile_t *p, merge_t *m, const cmd_opts_t *o, FILE *out)
{
	for (size_t i = 0; i < (m ? m->n : 1); i++) {
		const pass_t *ps = &(m ? &m->p[i] : p)->pass;
		if (ps->sample_bytes > 0) {
			/* the thread's next allocation is most often one that was not recorded */
			fprintf(stderr,
				"memprof: temporary: a sampled profile (sample_bytes %.0f) cannot tell temporary "
				"allocations: it does not hold the allocations between its samples\n",
				ps->sample_bytes);
			return 1;
		}
	}
	const pass_t *ps = m ? &m->total : &p->pass;
	temporary_of_t t = {p, m, ps->allocations, ps->temporary, ps->temporary_bytes};
	size_t all;
	rows_row_t *rows = m ? merge_rows(m, ROWS_BY_LINE, ROWS_SORT_TEMPORARY, &all)
			     : rows_build(p, ROWS_BY_LINE, ROWS_SORT_TEMPORARY, &all);
	size_t total = 0; /* sorted by temp_count first: the rows with any come first */
	while (total < all && rows[total].temp_count)
		total++;
	const char *fmt = o->format;
	long limit = o->limit >= 0 ? o->limit : strcmp(fmt, "text") == 0 ? TEMPORARY_TEXT_LIMIT : 0;
	size_t n = limit > 0 && (size_t)limit < total ? (size_t)limit : total;
	if (strcmp(fmt, "csv") == 0)
		temporary_csv(out, p, rows, n);
	else if (strcmp(fmt, "json") == 0)
		temporary_json(out, &t, rows, n, total);
	else
		temporary_text(out, &t, rows, n, total);
	free(rows);
	return 0;
}
