/* plot: memory over time as a self-contained SVG chart: RSS (sampled by the program)
 * and heap (bytes live in tracked allocations, exact at each sample from the pass), the
 * heap peak marked with its value and time, axes in seconds and MiB (KiB or GiB when
 * the values call for it) with 1-2-2.5-5 ticks, the command line as the title.
 * Long series are thinned to the first, lowest, highest and last point of every pixel
 * column, which keeps the drawing exact at its resolution. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "merge.h"
#include "output.h"
#include "units.h"

#define PLOT_W 960.0
#define PLOT_H 540.0
#define PLOT_LEFT 80.0
#define PLOT_RIGHT 30.0
#define PLOT_TOP 64.0
#define PLOT_BOTTOM 56.0
#define PLOT_RSS_COLOR "#2f6fbf"
#define PLOT_HEAP_COLOR "#d9531e"

typedef struct plot_axis {
	double max;  /* axis end (a multiple of step) */
	double step; /* tick spacing */
	int decimals;
} plot_axis_t;

/* Ticks at multiples of 1, 2, 2.5 or 5 times a power of ten, about `ticks` of them. */
static plot_axis_t plot_axis(double max, int ticks)
{
	plot_axis_t a;
	if (!(max > 0) || !isfinite(max))
		max = 1;
	double raw = max / ticks;
	double e = floor(log10(raw)), p = pow(10, e), f = raw / p;
	double nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
	if (nf == 10)
		nf = 1, e += 1, p *= 10;
	a.step = nf * p;
	a.max = ceil(max / a.step - 1e-9) * a.step;
	a.decimals = (e < 0 ? (int)-e : 0) + (nf == 2.5 && e <= 0);
	return a;
}

typedef struct plot_series {
	double *t, *v;
	size_t n, cap;
} plot_series_t;

static void plot_push(plot_series_t *s, double t, double v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->t = realloc(s->t, s->cap * sizeof *s->t);
		s->v = realloc(s->v, s->cap * sizeof *s->v);
		if (!s->t || !s->v)
			abort();
	}
	s->t[s->n] = t;
	s->v[s->n] = v;
	s->n++;
}

typedef struct plot_frame {
	double tmax, vmax, unit;
	double x0, x1, y0, y1; /* plot area: x0 left, y0 bottom */
} plot_frame_t;

static double plot_x(const plot_frame_t *fr, double t)
{
	return fr->x0 + (fr->x1 - fr->x0) * (t / fr->tmax);
}

static double plot_y(const plot_frame_t *fr, double bytes)
{
	return fr->y0 - (fr->y0 - fr->y1) * (bytes / fr->unit / fr->vmax);
}

static void plot_point(FILE *f, const plot_frame_t *fr, const plot_series_t *s, size_t i)
{
	fprintf(f, "%.1f,%.1f ", plot_x(fr, s->t[i]), plot_y(fr, s->v[i]));
}

/* The series as a polyline, at most four points per pixel column. */
static void plot_line(FILE *f, const plot_frame_t *fr, const plot_series_t *s, const char *color, const char *id)
{
	if (!s->n)
		return;
	fprintf(f, "<polyline id=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" stroke-linejoin=\"round\" points=\"",
		id, color);
	size_t i = 0;
	while (i < s->n) {
		long col = lround(plot_x(fr, s->t[i]));
		size_t j = i, lo = i, hi = i;
		while (j + 1 < s->n && lround(plot_x(fr, s->t[j + 1])) == col) {
			j++;
			if (s->v[j] < s->v[lo])
				lo = j;
			if (s->v[j] > s->v[hi])
				hi = j;
		}
		size_t pts[4] = {i, lo < hi ? lo : hi, lo < hi ? hi : lo, j};
		for (int k = 0; k < 4; k++)
			if (k == 0 || pts[k] != pts[k - 1])
				plot_point(f, fr, s, pts[k]);
		i = j + 1;
	}
	fputs("\"/>\n", f);
}

/* What a chart shows: the series, the heap peak, and the title's and subtitle's words. */
typedef struct plot_input {
	plot_series_t rss, heap;
	double peak_rss, peak_rss_t; /* the largest RSS sample and its time */
	uint64_t peak_heap;
	double peak_t;
	double duration_s;
	const char *command;
	char who[64];        /* "pid N" or "N processes" */
	double sample_bytes; /* > 0: the heap is an estimate */
	const char *stopped_reason; /* recording stopped early (one profile): why, and when */
	double stopped_s;
	bool heap_unknown_after; /* several processes: the heap is not known everywhere */
} plot_input_t;

static void plot_draw(FILE *f, plot_input_t *in);

/* The samples' RSS, and the heap where it is known, with the peak put in its place. */
static void plot_sample(plot_input_t *in, bool *peak_done, double t, double rss, double heap, bool known)
{
	if (!isfinite(t) || t < 0)
		t = 0;
	if (!*peak_done && in->peak_t <= t) {
		plot_push(&in->heap, in->peak_t, (double)in->peak_heap);
		*peak_done = true;
	}
	plot_push(&in->rss, t, rss);
	if (known) /* the heap line ends where recording stopped */
		plot_push(&in->heap, t, heap);
	if (rss > in->peak_rss) {
		in->peak_rss = rss;
		in->peak_rss_t = t;
	}
}

static int plot_run_merged(merge_t *m, FILE *f);

int plot_run(profile_t *p, merge_t *m, const cmd_opts_t *o, FILE *f)
{
	(void)o;
	if (m)
		return plot_run_merged(m, f);
	const db_t *db = &p->db;
	const pass_t *ps = &p->pass;
	plot_input_t in = {.peak_heap = ps->peak_heap, .peak_t = p->peak_time_s, .duration_s = p->duration_s,
			   .command = db->command, .sample_bytes = ps->sample_bytes,
			   .stopped_reason = db->stopped_reason,
			   .stopped_s = db->stopped_reason ? db_seconds(db, db->stopped_ticks) : 0};
	snprintf(in.who, sizeof in.who, "pid %" PRId64, db->pid);
	bool peak_done = ps->peak_heap == 0;
	for (size_t i = 0; i < db->n_samples; i++)
		plot_sample(&in, &peak_done, db_seconds(db, db->samples[i].ts), (double)db->samples[i].rss,
			    (double)ps->sample_heap[i], profile_heap_known(p, db->samples[i].ts));
	if (!peak_done)
		plot_push(&in.heap, in.peak_t, (double)in.peak_heap);
	plot_draw(f, &in);
	return 0;
}

static int plot_run_merged(merge_t *m, FILE *f)
{
	const profile_t *root = &m->p[m->first];
	plot_input_t in = {.peak_heap = m->peak_heap, .peak_t = m->peak_time_s, .duration_s = m->duration_s,
			   .command = root->db.command};
	snprintf(in.who, sizeof in.who, "%zu processes", m->n);
	for (size_t i = 0; i < m->n; i++) {
		if (m->p[i].pass.sample_bytes > 0)
			in.sample_bytes = m->p[i].pass.sample_bytes;
		if (m->p[i].db.stopped_reason)
			in.heap_unknown_after = true;
	}
	bool peak_done = m->peak_heap == 0;
	for (size_t i = 0; i < m->n_samples; i++) {
		const merge_sample_t *s = &m->samples[i];
		plot_sample(&in, &peak_done, s->t, (double)s->rss, (double)s->heap, s->heap_known);
	}
	if (!peak_done)
		plot_push(&in.heap, in.peak_t, (double)in.peak_heap);
	plot_draw(f, &in);
	return 0;
}

static void plot_draw(FILE *f, plot_input_t *in)
{
	plot_series_t rss = in->rss, heap = in->heap;
	double peak_rss = in->peak_rss, peak_rss_t = in->peak_rss_t, peak_t = in->peak_t;
	uint64_t peak_heap = in->peak_heap;
	plot_frame_t fr = {.x0 = PLOT_LEFT, .x1 = PLOT_W - PLOT_RIGHT, .y0 = PLOT_H - PLOT_BOTTOM, .y1 = PLOT_TOP};
	double tmax = in->duration_s, vmax = peak_rss > (double)peak_heap ? peak_rss : (double)peak_heap;
	for (size_t i = 0; i < rss.n; i++)
		tmax = rss.t[i] > tmax ? rss.t[i] : tmax;
	if (peak_t > tmax)
		tmax = peak_t;
	const char *unit_name = "MiB";
	fr.unit = 1048576.0;
	if (vmax < 1048576.0) {
		unit_name = "KiB";
		fr.unit = 1024.0;
	} else if (vmax >= 10.0 * 1073741824.0) {
		unit_name = "GiB";
		fr.unit = 1073741824.0;
	}
	plot_axis_t ax = plot_axis(tmax, 8), ay = plot_axis(vmax * 1.05 / fr.unit, 6);
	fr.tmax = ax.max;
	fr.vmax = ay.max;

	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		   "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\""
		   " viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
		PLOT_W, PLOT_H, PLOT_W, PLOT_H);
	fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", PLOT_W, PLOT_H);
	fprintf(f, "<text id=\"title\" x=\"%.0f\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">memprof plot: ",
		PLOT_W / 2);
	output_xml_str(f, in->command[0] ? in->command : "(unknown command)");
	fputs("</text>\n", f);
	char b1[UNITS_BUF], b2[UNITS_BUF];
	fprintf(f, "<text x=\"%.0f\" y=\"44\" text-anchor=\"middle\" fill=\"#555\">%s, duration %.3f s, peak RSS %s at "
		   "%.3f s, peak heap %s",
		PLOT_W / 2, in->who, in->duration_s, units_bytes(b1, (uint64_t)peak_rss), peak_rss_t,
		units_bytes(b2, peak_heap));
	if (in->sample_bytes > 0)
		fprintf(f, " (heap sampled, one per %s allocated: an estimate)", units_bytes(b1, (uint64_t)in->sample_bytes));
	if (in->stopped_reason) {
		fprintf(f, "; recording stopped at %.3f s (", in->stopped_s);
		output_xml_str(f, in->stopped_reason);
		fputs("): the heap after it is not known", f);
	}
	if (in->heap_unknown_after)
		fputs("; a process stopped recording early: the heap after it is not known", f);
	fputs("</text>\n", f);

	/* grid and ticks */
	fputs("<g id=\"axes\" stroke=\"#e3e3e3\" stroke-width=\"1\">\n", f);
	for (double v = 0; v <= ay.max + ay.step / 2; v += ay.step)
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fr.x0, plot_y(&fr, v * fr.unit),
			fr.x1, plot_y(&fr, v * fr.unit));
	for (double t = 0; t <= ax.max + ax.step / 2; t += ax.step)
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", plot_x(&fr, t), fr.y0,
			plot_x(&fr, t), fr.y1);
	fputs("</g>\n", f);
	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n", fr.x0,
		fr.y1, fr.x1 - fr.x0, fr.y0 - fr.y1);
	fputs("<g id=\"yticks\" text-anchor=\"end\">\n", f);
	for (double v = 0; v <= ay.max + ay.step / 2; v += ay.step)
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%.*f</text>\n", fr.x0 - 6, plot_y(&fr, v * fr.unit) + 4, ay.decimals,
			v);
	fputs("</g>\n<g id=\"xticks\" text-anchor=\"middle\">\n", f);
	for (double t = 0; t <= ax.max + ax.step / 2; t += ax.step)
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%.*f</text>\n", plot_x(&fr, t), fr.y0 + 18, ax.decimals, t);
	fputs("</g>\n", f);
	fprintf(f, "<text id=\"xlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">time (s)</text>\n",
		(fr.x0 + fr.x1) / 2, PLOT_H - 14);
	fprintf(f, "<text id=\"ylabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\">"
		   "memory (%s)</text>\n",
		22.0, (fr.y0 + fr.y1) / 2, 22.0, (fr.y0 + fr.y1) / 2, unit_name);

	plot_line(f, &fr, &rss, PLOT_RSS_COLOR, "rss");
	plot_line(f, &fr, &heap, PLOT_HEAP_COLOR, "heap");
	if (!rss.n)
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#777\">(no RSS samples)</text>\n",
			(fr.x0 + fr.x1) / 2, (fr.y0 + fr.y1) / 2);

	/* the heap peak */
	if (peak_heap) {
		double x = plot_x(&fr, peak_t), y = plot_y(&fr, (double)peak_heap);
		bool left = x > fr.x0 + 0.6 * (fr.x1 - fr.x0);
		double ty = y - 9 < fr.y1 + 14 ? y + 18 : y - 9;
		fprintf(f, "<circle id=\"peak\" cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\" stroke=\"#fff\"/>\n", x, y,
			PLOT_HEAP_COLOR);
		fprintf(f, "<text id=\"peak-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-weight=\"bold\">"
			   "peak heap %s at %.3f s</text>\n",
			left ? x - 8 : x + 8, ty, left ? "end" : "start", units_bytes(b1, peak_heap), peak_t);
	}

	/* legend */
	double lx = fr.x0 + 12, ly = fr.y1 + 16;
	fprintf(f, "<g id=\"legend\">\n<rect x=\"%.1f\" y=\"%.1f\" width=\"250\" height=\"44\" fill=\"#fff\" "
		   "fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n",
		lx - 6, ly - 12);
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>"
		   "<text x=\"%.1f\" y=\"%.1f\">RSS (resident memory)</text>\n",
		lx, ly - 4, lx + 24, ly - 4, PLOT_RSS_COLOR, lx + 32, ly);
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>"
		   "<text x=\"%.1f\" y=\"%.1f\">heap (live tracked allocations)</text>\n</g>\n",
		lx, ly + 14, lx + 24, ly + 14, PLOT_HEAP_COLOR, lx + 32, ly + 18);
	fputs("</svg>\n", f);
	free(rss.t);
	free(rss.v);
	free(heap.t);
	free(heap.v);
}
