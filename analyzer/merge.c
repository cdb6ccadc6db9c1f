/* merge: see merge.h. */
#include "merge.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "progress.h"
#include "source.h"
#include "units.h"

/* Files whose starts, told by their ticks and by the wall clock, differ by less than
 * this are of one clock (one machine, one boot): their ticks order their events. memprof
 * takes both at the same moment since session 19; before, a forked child's wall-clock
 * start was read when its file was made, up to ~0.1 s later on a busy machine. Another
 * boot's or machine's TSC is off by far more. */
#define MERGE_SAME_CLOCK_S 1.0
/* Each process measures the TSC's rate for itself: a few parts per million apart. */
#define MERGE_SAME_RATE 1e-4
#define MERGE_PROGRESS_EVERY (1u << 16)

/* A process's next items in time: its next event, or its end once its events are over;
 * and its next RSS sample. At equal times events come first (a sample holds the events
 * up to its time, as in one profile), then samples, then ends. */
enum { MERGE_EVENT, MERGE_SAMPLE, MERGE_END };
typedef struct merge_item {
	double t;
	uint32_t proc;
	uint32_t kind;
} merge_item_t;

/* A binary min-heap of items by time (equal times: the lower process first, an event
 * before an end, so that the order is the same every run). */
typedef struct merge_queue {
	merge_item_t *a;
	size_t n;
} merge_queue_t;

static bool merge_before(const merge_item_t *x, const merge_item_t *y)
{
	if (x->t != y->t)
		return x->t < y->t;
	if (x->kind != y->kind)
		return x->kind < y->kind;
	return x->proc < y->proc;
}

static void merge_push(merge_queue_t *q, merge_item_t it)
{
	size_t i = q->n++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!merge_before(&it, &q->a[up]))
			break;
		q->a[i] = q->a[up];
		i = up;
	}
	q->a[i] = it;
}

static merge_item_t merge_pop(merge_queue_t *q)
{
	merge_item_t top = q->a[0], last = q->a[--q->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= q->n)
			break;
		if (c + 1 < q->n && merge_before(&q->a[c + 1], &q->a[c]))
			c++;
		if (!merge_before(&q->a[c], &last))
			break;
		q->a[i] = q->a[c];
		i = c;
	}
	if (q->n)
		q->a[i] = last;
	return top;
}

/* Seconds after the first start of process i's clock value ts. */
static double merge_time(const merge_t *m, size_t i, uint64_t ts)
{
	return m->start_s[i] + db_seconds(&m->p[i].db, ts);
}

/* Where each process starts on the common clock (m->start_s), by ticks if they agree. */
static void merge_place(merge_t *m)
{
	size_t first = 0;
	for (size_t i = 1; i < m->n; i++)
		if (m->p[i].db.start_time_unix < m->p[first].db.start_time_unix)
			first = i;
	m->first = first;
	const db_t *f = &m->p[first].db;
	const char *clock = db_meta_get(f, "clock");
	m->by_ticks = true;
	for (size_t i = 0; i < m->n; i++) {
		const db_t *d = &m->p[i].db;
		const char *c = db_meta_get(d, "clock");
		m->start_s[i] = (double)(int64_t)(d->clock_start - f->clock_start) / f->ticks_per_sec;
		m->by_ticks = m->by_ticks && c && clock && strcmp(c, clock) == 0 &&
			      fabs(d->ticks_per_sec / f->ticks_per_sec - 1) < MERGE_SAME_RATE &&
			      fabs(m->start_s[i] - (d->start_time_unix - f->start_time_unix)) < MERGE_SAME_CLOCK_S;
	}
	for (size_t i = 0; i < m->n && !m->by_ticks; i++)
		m->start_s[i] = m->p[i].db.start_time_unix - f->start_time_unix;
}

static int merge_fail(const merge_t *m, size_t i)
{
	fprintf(stderr, "memprof: %s: %s\n", m->p[i].db.path ? m->p[i].db.path : "?", m->p[i].db.err);
	return -1;
}

/* The next item of process i into the queue: -1 on damaged input. */
static int merge_next(merge_t *m, merge_queue_t *q, pass_state_t **st, size_t i)
{
	uint64_t ts;
	int r = pass_peek(st[i], &ts);
	if (r < 0)
		return -1;
	if (r > 0)
		merge_push(q, (merge_item_t){merge_time(m, i, ts), (uint32_t)i, MERGE_EVENT});
	else
		merge_push(q, (merge_item_t){merge_time(m, i, pass_last_ticks(&m->p[i].pass, &m->p[i].db)),
					     (uint32_t)i, MERGE_END});
	return 0;
}

/* Process i's sample k into the queue, if it has one. */
static void merge_next_sample(merge_t *m, merge_queue_t *q, size_t i, size_t k)
{
	if (k < m->p[i].db.n_samples)
		merge_push(q, (merge_item_t){merge_time(m, i, m->p[i].db.samples[k].ts), (uint32_t)i, MERGE_SAMPLE});
}

/* The passes side by side (merge.h). */
static int merge_passes(merge_t *m)
{
	uint32_t epoch = 0;
	int ret = -1;
	size_t i = 0;
	pass_state_t **st = calloc(m->n, sizeof *st);
	merge_queue_t q = {calloc(2 * m->n, sizeof *q.a), 0};
	size_t *next_sample = calloc(m->n, sizeof *next_sample), n_samples = 0;
	uint64_t *rss = calloc(m->n, sizeof *rss); /* each process's latest RSS sample */
	double *stopped = calloc(m->n, sizeof *stopped);
	bool *ended = calloc(m->n, sizeof *ended);
	for (i = 0; i < m->n; i++)
		n_samples += m->p[i].db.n_samples;
	m->samples = calloc(n_samples + 1, sizeof *m->samples);
	if (!st || !q.a || !next_sample || !rss || !stopped || !ended || !m->samples) {
		fputs("memprof: out of memory\n", stderr);
		goto out;
	}
	for (i = 0; i < m->n; i++) {
		const db_t *db = &m->p[i].db;
		stopped[i] = db->stopped_reason ? merge_time(m, i, db->stopped_ticks) : INFINITY;
		if (!(st[i] = pass_begin(&m->p[i].pass, &m->p[i].db, &epoch)) || merge_next(m, &q, st, i))
			goto fail;
		merge_next_sample(m, &q, i, 0);
	}
	/* the heaps of the processes alive, together (a process's own heap is its pass's),
	 * and their RSS */
	uint64_t heap = 0, rss_sum = 0, steps = 0;
	while (q.n) {
		if (steps++ % MERGE_PROGRESS_EVERY == 0) {
			size_t done = 0, total = 0;
			for (size_t k = 0; k < m->n; k++) {
				size_t d = 0, t = 0;
				if (st[k])
					pass_progress(st[k], &d, &t);
				done += d;
				total += t;
			}
			progress_update(done, total);
		}
		merge_item_t it = merge_pop(&q);
		i = it.proc;
		pass_t *p = &m->p[i].pass;
		if (it.kind == MERGE_END) { /* what it still held goes with it */
			heap -= p->heap;
			rss_sum -= rss[i];
			rss[i] = 0;
			m->end_s[i] = it.t;
			ended[i] = true;
			continue;
		}
		if (it.kind == MERGE_SAMPLE) {
			size_t k = next_sample[i]++;
			rss_sum = rss_sum - rss[i] + m->p[i].db.samples[k].rss;
			rss[i] = m->p[i].db.samples[k].rss;
			/* the heap is not known once a process alive then had stopped recording
			 * (its end is after this sample: ends come after samples) */
			bool known = true;
			for (size_t j = 0; j < m->n && known; j++)
				known = ended[j] || !(stopped[j] < it.t);
			m->samples[m->n_samples++] = (merge_sample_t){it.t, rss_sum, heap, known};
			merge_next_sample(m, &q, i, k + 1);
			continue;
		}
		uint64_t before = p->heap;
		if (pass_step(p, st[i]) < 0)
			goto fail;
		heap = heap - before + p->heap;
		if (heap > m->peak_heap) {
			m->peak_heap = heap;
			m->peak_time_s = it.t;
			epoch++;
		}
		if (merge_next(m, &q, st, i))
			goto fail;
	}
	/* a process that ended before the peak held nothing then; one that ended after
	 * it, or at it (its end comes after its last event at the same time), held what
	 * its stacks held */
	for (i = 0; i < m->n; i++) {
		bool ended_before = m->peak_heap && m->end_s[i] < m->peak_time_s;
		pass_finish(&m->p[i].pass, st[i], ended_before);
		st[i] = NULL;
		if (m->end_s[i] > m->duration_s)
			m->duration_s = m->end_s[i];
	}
	ret = 0;
	goto out;
fail:
	merge_fail(m, i);
out:
	for (size_t k = 0; st && k < m->n; k++)
		if (st[k])
			pass_abandon(st[k]);
	progress_end();
	free(st);
	free(q.a);
	free(next_sample);
	free(rss);
	free(stopped);
	free(ended);
	return ret;
}

/* m->total and m->dropped_events (merge.h). */
static void merge_total(merge_t *m)
{
	pass_t *sum = &m->total;
	memset(sum, 0, sizeof *sum);
	sum->has_end = true;
	for (size_t i = 0; i < m->n; i++) {
		const pass_t *ps = &m->p[i].pass;
		sum->events += ps->events;
		sum->allocations += ps->allocations;
		sum->allocated_bytes += ps->allocated_bytes;
		sum->frees += ps->frees;
		sum->unmatched_frees += ps->unmatched_frees;
		sum->replaced_allocations += ps->replaced_allocations;
		sum->unknown_stacks += ps->unknown_stacks;
		sum->end_markers += ps->end_markers;
		sum->temporary += ps->temporary;
		sum->temporary_bytes += ps->temporary_bytes;
		for (int a = 0; a < MP_AL_COUNT; a++)
			sum->by_allocator[a] += ps->by_allocator[a];
		for (unsigned b = 0; b < PASS_HIST_BUCKETS; b++) {
			sum->hist_count[b] += ps->hist_count[b];
			sum->hist_bytes[b] += ps->hist_bytes[b];
		}
		sum->heap += ps->heap;
		sum->live_blocks += ps->live_blocks;
		sum->end_heap += ps->end_heap;
		sum->has_end = sum->has_end && ps->has_end;
		if (ps->sample_bytes > 0)
			sum->sample_bytes = ps->sample_bytes;
	}
	sum->peak_heap = m->peak_heap;
	m->dropped_events = 0;
	for (size_t i = 0; i < m->n; i++)
		m->dropped_events += m->p[i].db.dropped_events;
}

int merge_open(merge_t *m, char *const *paths, size_t n, const char *focus)
{
	memset(m, 0, sizeof *m);
	m->p = calloc(n, sizeof *m->p);
	m->start_s = calloc(n, sizeof *m->start_s);
	m->end_s = calloc(n, sizeof *m->end_s);
	if (!m->p || !m->start_s || !m->end_s) {
		fputs("memprof: out of memory\n", stderr);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		m->n = i + 1;
		if (db_open(&m->p[i].db, paths[i]))
			return merge_fail(m, i);
		if (!m->p[i].db.has_clock_start) {
			db_fail(&m->p[i].db, "written by a memprof too old to be read with other files (no "
					     "clock_start_ticks): read it alone");
			return merge_fail(m, i);
		}
	}
	merge_place(m);
	if (merge_passes(m))
		return -1;
	merge_total(m);
	bool matched = false;
	for (size_t i = 0; i < n; i++) {
		if (profile_analyzed(&m->p[i], focus))
			return merge_fail(m, i);
		matched = matched || (focus && locate_focus_matched(m->p[i].locate));
	}
	if (focus && !matched)
		fprintf(stderr, "memprof: note: no Python frame of the profiles is in %s (--focus): the figures are "
				"as without it\n",
			focus);
	return 0;
}

void merge_close(merge_t *m)
{
	for (size_t i = 0; m->p && i < m->n; i++)
		profile_close(&m->p[i]);
	free(m->p);
	free(m->start_s);
	free(m->end_s);
	free(m->samples);
	memset(m, 0, sizeof *m);
}

rows_row_t *merge_rows(merge_t *m, rows_by_t by, rows_sort_t sort, size_t *n_out)
{
	locate_t *loc = m->p[0].locate;
	rows_acc_t acc = {0};
	for (size_t i = 0; i < m->n; i++) {
		size_t k;
		rows_row_t *rows = rows_build(&m->p[i], by, sort, &k);
		for (size_t j = 0; j < k; j++) {
			uint32_t at = rows[j].loc;
			if (i) { /* into the first profile's locator */
				const locate_loc_t *l = locate_get(m->p[i].locate, at);
				at = locate_intern(loc, l->file, l->line, l->function);
			}
			rows_acc_add(&acc, at, &rows[j]);
		}
		free(rows);
	}
	return rows_acc_finish(&acc, loc, sort, n_out);
}

source_t *merge_source(const merge_t *m)
{
	source_t *s = source_new(m->p[0].db.cwd);
	for (size_t i = 0; s && i < m->n; i++)
		for (size_t k = 0; k < m->p[i].db.n_sources; k++) {
			const db_source_t *f = &m->p[i].db.sources[k];
			source_expect(s, f->filename, f->size, f->mtime_ns);
		}
	return s;
}

void merge_text_header(FILE *f, const merge_t *m, const char *what)
{
	char b1[UNITS_BUF], b2[UNITS_BUF];
	uint64_t allocs = m->total.allocations;
	fprintf(f, "memprof %s: %zu processes, duration %.3f s, peak heap %s at %.3f s (all processes together), "
		   "%s allocation%s\n",
		what, m->n, m->duration_s, units_bytes(b1, m->peak_heap), m->peak_time_s, units_count(b2, allocs),
		units_s(allocs));
	if (!m->by_ticks)
		fputs("note: the files' clocks differ (another boot or machine?): processes are placed by their "
		      "wall-clock starts\n",
		      f);
	for (size_t i = 0; i < m->n; i++) {
		const profile_t *p = &m->p[i];
		fprintf(f, "  pid %" PRId64 ": %.3f-%.3f s, peak heap %s at %.3f s, %s allocation%s: %s\n", p->db.pid,
			m->start_s[i], m->end_s[i], units_bytes(b1, p->pass.peak_heap), m->start_s[i] + p->peak_time_s,
			units_count(b2, p->pass.allocations), units_s(p->pass.allocations),
			p->db.command[0] ? p->db.command : "(unknown command)");
	}
	for (size_t i = 0; i < m->n; i++) {
		char who[64];
		snprintf(who, sizeof who, "pid %" PRId64 ": ", m->p[i].db.pid);
		profile_text_notes(f, &m->p[i], who);
	}
}

void merge_json_header(FILE *f, const merge_t *m)
{
	fputs("\"processes\":[", f);
	for (size_t i = 0; i < m->n; i++) {
		const profile_t *p = &m->p[i];
		fputs(i ? ",\n {\"file\":" : "\n {\"file\":", f);
		output_json_str(f, p->db.path);
		fputc(',', f);
		profile_json_header(f, p);
		fputs(",\"start_s\":", f);
		output_json_double(f, m->start_s[i]);
		fputs(",\"end_s\":", f);
		output_json_double(f, m->end_s[i]);
		fputc('}', f);
	}
	fputs("],\"duration_s\":", f);
	output_json_double(f, m->duration_s);
	fprintf(f, ",\"peak_heap_bytes\":%" PRIu64 ",\"peak_time_s\":", m->peak_heap);
	output_json_double(f, m->peak_time_s);
	fprintf(f, ",\"allocations\":%" PRIu64 ",\"dropped_events\":%" PRIu64 ",\"clocks_agree\":%s",
		m->total.allocations, m->dropped_events, m->by_ticks ? "true" : "false");
}
