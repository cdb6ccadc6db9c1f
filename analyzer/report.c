/* report: the per-location table, as text for people, csv and json for programs. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "merge.h"
#include "output.h"
#include "source.h"
#include "units.h"

/* Frees of blocks never seen allocated that the report mentions: more than this many, and
 * more than 0.1% of all frees. */
#define REPORT_UNMATCHED_SAID 100

#define REPORT_TEXT_LIMIT 30

void report_json_row(FILE *f, const profile_t *p, const rows_row_t *r)
{
	fputc('{', f);
	rows_json_location(f, locate_get(p->locate, r->loc));
	fprintf(f,
		",\"peak_bytes\":%" PRIu64 ",\"allocated_bytes\":%" PRIu64 ",\"allocations\":%" PRIu64
		",\"end_bytes\":%" PRIu64 ",\"leaked_bytes\":%" PRIu64 "}",
		r->peak_bytes, r->allocated_bytes, r->allocations, r->end_bytes, r->leaked_bytes);
}

static void report_csv(FILE *f, const profile_t *p, const rows_row_t *rows, size_t n)
{
	fputs("file,line,function,peak_bytes,allocated_bytes,allocations,end_bytes\n", f);
	for (size_t i = 0; i < n; i++) {
		rows_csv_location(f, locate_get(p->locate, rows[i].loc));
		fprintf(f, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", rows[i].peak_bytes,
			rows[i].allocated_bytes, rows[i].allocations, rows[i].end_bytes);
	}
}

/* `m`: the rows are several processes' (p is m's first profile, whose locator has their
 * locations), else NULL. */
static void report_json(FILE *f, const profile_t *p, const merge_t *m, const rows_row_t *rows, size_t n,
			size_t total)
{
	fputc('{', f);
	if (m)
		merge_json_header(f, m);
	else
		profile_json_header(f, p);
	/* rows_total: all the rows, of which --limit kept the first */
	fprintf(f, ",\"rows_total\":%zu,\"rows\":[", total);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		fputs("\n ", f);
		report_json_row(f, p, &rows[i]);
	}
	fputs("\n]}\n", f);
}

static void report_text(FILE *f, const profile_t *p, const merge_t *m, const cmd_opts_t *o,
			const rows_row_t *rows, size_t n, size_t total)
{
	if (m)
		merge_text_header(f, m, "report");
	else
		profile_text_header(f, p, "report");
	/* A few are every program's (blocks its libraries allocated before memprof's
	 * constructor ran: 25 in any Python program), which `stats` counts; many say that
	 * blocks came from where memprof does not look. */
	const pass_t *ps = m ? &m->total : &p->pass;
	uint64_t unmatched = ps->unmatched_frees;
	if (unmatched > REPORT_UNMATCHED_SAID && unmatched * 1000 > ps->frees)
		fprintf(f, "note: %" PRIu64 " free%s of blocks not recorded (allocated before recording started, or "
			   "where memprof does not look) %s ignored\n",
			unmatched, units_s(unmatched), unmatched == 1 ? "was" : "were");
	fputc('\n', f);
	if (total == 0) {
		fputs("no allocations recorded\n", f);
		return;
	}
	source_t *src = o->by != ROWS_BY_LINE ? NULL : m ? merge_source(m) : profile_source(p);
	fprintf(f, "%10s %10s %10s %10s  %s\n", "PEAK", "ALLOCATED", "ALLOCS", "AT END",
		o->by == ROWS_BY_FILE ? "FILE" : o->by == ROWS_BY_FUNCTION ? "FUNCTION" : "LOCATION");
	for (size_t i = 0; i < n; i++) {
		const rows_row_t *r = &rows[i];
		const locate_loc_t *l = locate_get(p->locate, r->loc);
		char b1[UNITS_BUF], b2[UNITS_BUF], b3[UNITS_BUF], b4[UNITS_BUF];
		fprintf(f, "%10s %10s %10s %10s  ", units_bytes(b1, r->peak_bytes),
			units_bytes(b2, r->allocated_bytes), units_count(b3, r->allocations),
			units_bytes(b4, r->end_bytes));
		rows_text_location(f, l, o->by == ROWS_BY_FILE, src, 45);
	}
	if (n < total)
		fprintf(f, "... %zu more locations (--limit=0 shows all)\n", total - n);
	source_free(src);
}

int report_run(profile_t *p, merge_t *m, const cmd_opts_t *o, FILE *out)
{
	size_t total;
	rows_row_t *rows = m ? merge_rows(m, o->by, o->sort, &total) : rows_build(p, o->by, o->sort, &total);
	const char *fmt = o->format;
	long limit = o->limit >= 0 ? o->limit : strcmp(fmt, "text") == 0 ? REPORT_TEXT_LIMIT : 0;
	size_t n = limit > 0 && (size_t)limit < total ? (size_t)limit : total;
	if (strcmp(fmt, "csv") == 0)
		report_csv(out, p, rows, n);
	else if (strcmp(fmt, "json") == 0)
		report_json(out, p, m, rows, n, total);
	else
		report_text(out, p, m, o, rows, n, total);
	free(rows);
	return 0;
}
