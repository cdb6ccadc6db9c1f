/* stats: totals of the pass, peak heap and RSS, the size histogram, allocators and the
 * top lines by peak; of one profile, or of several processes' added up (merge.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "merge.h"
#include "output.h"
#include "units.h"

#define STATS_TOP 10

typedef struct stats_rss {
	uint64_t peak;
	double time_s;
} stats_rss_t;

static stats_rss_t stats_peak_rss(const profile_t *p)
{
	stats_rss_t r = {0, 0};
	for (size_t i = 0; i < p->db.n_samples; i++)
		if (p->db.samples[i].rss > r.peak) {
			r.peak = p->db.samples[i].rss;
			r.time_s = db_seconds(&p->db, p->db.samples[i].ts);
		}
	return r;
}

/* What stats shows: one profile's figures, or several processes' added up (merge.h). */
typedef struct stats_view {
	profile_t *p;      /* the profile; for a merge its first (whose locator the rows use) */
	const merge_t *m;  /* several processes, else NULL */
	const pass_t *ps;  /* the pass's figures; for a merge their sums */
	uint64_t threads;
	size_t n_samples;
	stats_rss_t rss;   /* for a merge: the processes' RSS added up (merge_sample_t) */
	double peak_time_s;
	uint64_t dropped_events;
	bool has_queued_bytes_peak;
	uint64_t queued_bytes_peak; /* for a merge: the largest of the processes' */
} stats_view_t;

static stats_view_t stats_view_one(profile_t *p)
{
	return (stats_view_t){p, NULL, &p->pass, p->db.threads, p->db.n_samples, stats_peak_rss(p), p->peak_time_s,
			      p->db.dropped_events, p->db.has_queued_bytes_peak, p->db.queued_bytes_peak};
}

/* Several processes: the passes' figures added up (merge_t.total), the peak of their RSS
 * added up, their threads and samples added up, their dropped events, the largest writer
 * queue of any. */
static stats_view_t stats_view_merged(merge_t *m)
{
	stats_view_t v = {&m->p[0], m, &m->total, 0, m->n_samples, {0, 0}, m->peak_time_s, m->dropped_events, false, 0};
	for (size_t i = 0; i < m->n; i++) {
		const db_t *db = &m->p[i].db;
		v.threads += db->threads;
		if (db->has_queued_bytes_peak) {
			v.has_queued_bytes_peak = true;
			if (db->queued_bytes_peak > v.queued_bytes_peak)
				v.queued_bytes_peak = db->queued_bytes_peak;
		}
	}
	for (size_t i = 0; i < m->n_samples; i++)
		if (m->samples[i].rss > v.rss.peak) {
			v.rss.peak = m->samples[i].rss;
			v.rss.time_s = m->samples[i].t;
		}
	return v;
}

static uint64_t stats_bucket_min(unsigned b)
{
	return b ? UINT64_C(1) << (b - 1) : 0;
}

static uint64_t stats_bucket_max(unsigned b)
{
	return b == 0 ? 0 : b == 64 ? UINT64_MAX : (UINT64_C(1) << b) - 1;
}

static void stats_json(FILE *f, const stats_view_t *v, const rows_row_t *rows, size_t n)
{
	profile_t *p = v->p;
	const pass_t *ps = v->ps;
	fputc('{', f);
	if (v->m)
		merge_json_header(f, v->m);
	else
		profile_json_header(f, p);
	fprintf(f,
		",\"threads\":%" PRIu64 ",\"allocations\":%" PRIu64 ",\"frees\":%" PRIu64
		",\"allocated_bytes\":%" PRIu64 ",\"peak_rss_bytes\":%" PRIu64 ",\"peak_rss_time_s\":",
		v->threads, ps->allocations, ps->frees, ps->allocated_bytes, v->rss.peak);
	output_json_double(f, v->rss.time_s);
	fprintf(f,
		",\"end_bytes\":%" PRIu64 ",\"leaked_bytes\":%" PRIu64 ",\"leaked_blocks\":%" PRIu64
		",\"end_marker\":%s,\"unmatched_frees\":%" PRIu64 ",\"replaced_allocations\":%" PRIu64
		",\"unknown_stacks\":%" PRIu64 ",\"samples\":%zu,\"queued_bytes_peak\":",
		ps->end_heap, ps->heap, ps->live_blocks, ps->has_end ? "true" : "false",
		ps->unmatched_frees, ps->replaced_allocations, ps->unknown_stacks, v->n_samples);
	if (v->has_queued_bytes_peak)
		fprintf(f, "%" PRIu64, v->queued_bytes_peak);
	else
		fputs("null", f); /* a file from before it was recorded */
	if (ps->sample_bytes > 0) /* pass.c: not known from samples */
		fputs(",\"temporary_allocations\":null,\"temporary_bytes\":null", f);
	else
		fprintf(f, ",\"temporary_allocations\":%" PRIu64 ",\"temporary_bytes\":%" PRIu64,
			ps->temporary, ps->temporary_bytes);
	fputs(",\"allocators\":{", f);
	int first = 1;
	for (int a = 0; a < MP_AL_COUNT; a++) {
		if (!ps->by_allocator[a])
			continue;
		fputs(first ? "" : ",", f);
		first = 0;
		output_json_str(f, mp_allocator_names[a]);
		fprintf(f, ":%" PRIu64, ps->by_allocator[a]);
	}
	fputs("},\"histogram\":[", f);
	first = 1;
	for (unsigned b = 0; b < PASS_HIST_BUCKETS; b++) {
		if (!ps->hist_count[b])
			continue;
		fprintf(f,
			"%s{\"min\":%" PRIu64 ",\"max\":%" PRIu64 ",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
			first ? "" : ",", stats_bucket_min(b), stats_bucket_max(b), ps->hist_count[b],
			ps->hist_bytes[b]);
		first = 0;
	}
	fputs("],\"top_lines\":[", f);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		report_json_row(f, p, &rows[i]);
	}
	fputs("]}\n", f);
}

static void stats_text(FILE *f, const stats_view_t *v, const rows_row_t *rows, size_t n)
{
	profile_t *p = v->p;
	const pass_t *ps = v->ps;
	stats_rss_t rss = v->rss;
	char b1[UNITS_BUF], b2[UNITS_BUF], b3[UNITS_BUF];
	if (v->m) {
		merge_text_header(f, v->m, "stats");
		size_t complete = 0;
		for (size_t i = 0; i < v->m->n; i++)
			complete += strcmp(v->m->p[i].db.status, "complete") == 0;
		fprintf(f, "\n%-22s %zu of %zu processes complete\n", "status:", complete, v->m->n);
	} else {
		profile_text_header(f, p, "stats");
		const char *why = strcmp(p->db.status, "running") != 0 ? ""
				  : p->still_running ? " (the program is still running)"
						     : " (not closed cleanly: the process was killed, or its file unwritable?)";
		fprintf(f, "\n%-22s %s%s\n", "status:", p->db.status, why);
	}
	fprintf(f, "%-22s %" PRIu64 "\n", "threads:", v->threads);
	fprintf(f, "%-22s %s (%s)\n", "allocations:", units_count(b1, ps->allocations),
		units_bytes(b2, ps->allocated_bytes));
	fprintf(f, "%-22s %s\n", "frees:", units_count(b1, ps->frees));
	if (ps->sample_bytes > 0)
		fprintf(f, "%-22s %s\n", "temporary:", "not known in a sampled profile");
	else
		fprintf(f, "%-22s %s (%.1f%%, %s)\n", "temporary:", units_count(b1, ps->temporary),
			ps->allocations ? 100.0 * (double)ps->temporary / (double)ps->allocations : 0.0,
			units_bytes(b2, ps->temporary_bytes));
	fprintf(f, "%-22s %s at %.3f s%s\n", "peak heap:", units_bytes(b1, ps->peak_heap), v->peak_time_s,
		v->m ? " (all processes together)" : "");
	if (v->n_samples)
		fprintf(f, "%-22s %s at %.3f s (%zu samples%s)\n", "peak RSS:", units_bytes(b1, rss.peak),
			rss.time_s, v->n_samples, v->m ? "; the processes' RSS added up" : "");
	else
		fprintf(f, "%-22s (no samples)\n", "peak RSS:");
	fprintf(f, "%-22s %s%s\n", "live at end:", units_bytes(b1, ps->end_heap),
		v->m ? " (each process at its end)" : ps->has_end ? "" : " (no end-of-program marker: at exit)");
	fprintf(f, "%-22s %s in %s block%s\n", "never freed:", units_bytes(b1, ps->heap),
		units_count(b2, ps->live_blocks), units_s(ps->live_blocks));
	fprintf(f, "%-22s %s\n", "dropped events:", units_count(b1, v->dropped_events));
	if (v->has_queued_bytes_peak)
		fprintf(f, "%-22s %s%s\n", "writer queue peak:", units_bytes(b1, v->queued_bytes_peak),
			v->m ? " (the largest of the processes')" : "");
	for (size_t i = 0; i < (v->m ? v->m->n : 1); i++) {
		const profile_t *q = v->m ? &v->m->p[i] : p;
		if (!q->db.stopped_reason)
			continue;
		if (v->m)
			fprintf(f, "%-22s pid %" PRId64 " at %.3f s: %s\n", "recording stopped:", q->db.pid,
				v->m->start_s[i] + db_seconds(&q->db, q->db.stopped_ticks), q->db.stopped_reason);
		else
			fprintf(f, "%-22s at %.3f s: %s\n", "recording stopped:",
				db_seconds(&q->db, q->db.stopped_ticks), q->db.stopped_reason);
	}
	if (ps->unmatched_frees)
		fprintf(f, "%-22s %s\n", "unmatched frees:", units_count(b1, ps->unmatched_frees));
	if (ps->replaced_allocations)
		fprintf(f, "%-22s %s\n", "reused live addresses:",
			units_count(b1, ps->replaced_allocations));

	fputs("\nallocations by function:\n", f);
	for (int a = 0; a < MP_AL_COUNT; a++)
		if (ps->by_allocator[a])
			fprintf(f, "  %-18s %12s\n", mp_allocator_names[a], units_count(b1, ps->by_allocator[a]));

	fputs("\nallocation sizes:\n", f);
	uint64_t maxc = 1;
	for (unsigned b = 0; b < PASS_HIST_BUCKETS; b++)
		if (ps->hist_count[b] > maxc)
			maxc = ps->hist_count[b];
	for (unsigned b = 0; b < PASS_HIST_BUCKETS; b++) {
		if (!ps->hist_count[b])
			continue;
		/* [min, 2 min): exact bytes while they are bytes, else "up to" the next power,
		 * which a rounded max would print as the next bucket's min */
		char range[2 * UNITS_BUF + 8];
		if (b == 0)
			snprintf(range, sizeof range, "0 B");
		else if (stats_bucket_max(b) < 1024 || b == 64)
			snprintf(range, sizeof range, "%s - %s", units_bytes(b1, stats_bucket_min(b)),
				 units_bytes(b2, stats_bucket_max(b)));
		else
			snprintf(range, sizeof range, "%s - <%s", units_bytes(b1, stats_bucket_min(b)),
				 units_bytes(b2, stats_bucket_max(b) + 1));
		int bar = (int)(40 * ps->hist_count[b] / maxc);
		fprintf(f, "  %-22s %12s  %.*s\n", range, units_count(b3, ps->hist_count[b]),
			bar ? bar : 1, "########################################");
	}

	fputs("\ntop lines by peak:\n", f);
	for (size_t i = 0; i < n && rows[i].peak_bytes; i++) {
		const locate_loc_t *l = locate_get(p->locate, rows[i].loc);
		if (l->line > 0)
			fprintf(f, "  %10s  %s:%d %s\n", units_bytes(b1, rows[i].peak_bytes), l->file, l->line,
				l->function);
		else
			fprintf(f, "  %10s  %s %s\n", units_bytes(b1, rows[i].peak_bytes), l->file, l->function);
	}
	if (n == 0)
		fputs("  (none)\n", f);
}

static int stats_write(const stats_view_t *v, rows_row_t *rows, size_t total, const cmd_opts_t *o, FILE *out)
{
	size_t n = total < STATS_TOP ? total : STATS_TOP;
	if (strcmp(o->format, "json") == 0)
		stats_json(out, v, rows, n);
	else
		stats_text(out, v, rows, n);
	free(rows);
	return 0;
}

int stats_run(profile_t *p, merge_t *m, const cmd_opts_t *o, FILE *out)
{
	size_t total;
	rows_row_t *rows = m ? merge_rows(m, ROWS_BY_LINE, ROWS_SORT_PEAK, &total)
			     : rows_build(p, ROWS_BY_LINE, ROWS_SORT_PEAK, &total);
	stats_view_t v = m ? stats_view_merged(m) : stats_view_one(p);
	return stats_write(&v, rows, total, o, out);
}
