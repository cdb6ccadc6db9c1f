/* flamegraph: the flame tree (flametree.c) as a self-contained interactive SVG, or in
 * the folded format (`frame;frame;frame bytes`, outermost first) that other flame graph
 * tools read.
 *
 * The SVG draws every frame at least FLAME_MIN_PX wide as a rectangle with its label
 * (cut to fit) and a <title> (label, bytes, share), so it is readable as a plain image;
 * an inline script adds the details line on hover, zoom on click (the frame and what it
 * called fill the width, its callers stay as full-width bars below), a reset control
 * and a search box that highlights matching frames and says what share they hold. No
 * external script, style sheet or font: the text is monospace so that widths are known.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "merge.h"
#include "flametree.h"
#include "output.h"
#include "units.h"

#define FLAME_WIDTH 1200.0
#define FLAME_PAD 10.0
#define FLAME_FRAME_H 16
#define FLAME_TOP 64
#define FLAME_BOTTOM 34
#define FLAME_MIN_PX 0.1
#define FLAME_CHAR_W 7.2 /* 12px monospace */

static const char *const flamegraph_metric_what[] = {
	"bytes live at the heap peak",
	"bytes allocated",
	"bytes live at the end of the program",
	"bytes never freed",
};

/* ---- folded ---- */

static void flamegraph_folded(FILE *f, const flametree_t *t)
{
	uint32_t n;
	const flame_node_t *nodes = flametree_nodes(t, &n);
	/* iterative depth-first walk in label order; path[] holds the labels from the root */
	uint32_t *path = malloc((size_t)(n + 1) * sizeof *path);
	if (!path)
		abort();
	size_t depth = 0;
	uint32_t cur = nodes[0].child;
	while (cur) {
		const flame_node_t *c = &nodes[cur];
		path[depth] = c->label;
		if (c->self) {
			for (size_t k = 0; k <= depth; k++) {
				if (k)
					fputc(';', f);
				/* ';' separates frames: one in a name becomes ',' */
				for (const char *ch = flametree_label(t, path[k]); *ch; ch++)
					fputc(*ch == ';' ? ',' : *ch, f);
			}
			fprintf(f, " %" PRIu64 "\n", c->self);
		}
		if (c->child && c->total > c->self) {
			depth++;
			cur = c->child;
			continue;
		}
		/* next sibling, or climb */
		while (cur && !nodes[cur].sibling) {
			cur = nodes[cur].parent;
			if (cur == 0)
				break;
			depth--;
		}
		cur = cur ? nodes[cur].sibling : 0;
	}
	free(path);
}

/* ---- svg ---- */

static uint32_t flamegraph_color(const char *s, int kind)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	unsigned v1 = h & 0xff, v2 = (h >> 8) & 0xff, v3 = (h >> 16) & 0xff;
	unsigned r, g, b;
	if (kind == FLAME_PYTHON) { /* warm: orange to yellow */
		r = 225 + v1 % 30;
		g = 120 + v2 % 100;
		b = 40 + v3 % 40;
	} else if (kind == FLAME_NATIVE) { /* red to pink */
		r = 200 + v1 % 55;
		g = 60 + v2 % 60;
		b = 60 + v3 % 50;
	} else {
		r = g = b = 190 + v1 % 20;
	}
	return r << 16 | g << 8 | b;
}

/* The label as drawn in its box: file names without their directories
 * (`/usr/lib/python3.11/json/encoder.py:202 f` -> `encoder.py:202 f`, `f (/src/x.c:3)` ->
 * `f (x.c:3)`); the tooltip and the details line keep the whole label. The script's
 * shortLabel() does the same. */
static void flamegraph_short(char *out, size_t cap, const char *label)
{
	const char *p = label, *slash = NULL;
	for (const char *c = label; *c && !strchr(" \t:(", *c); c++)
		if (*c == '/')
			slash = c;
	if (slash)
		p = slash + 1;
	snprintf(out, cap, "%s", p);
	for (char *open = strchr(out, '('); open; open = strchr(open + 1, '(')) {
		char *last = NULL, *c = open + 1;
		for (; *c && !strchr(" \t:()", *c); c++)
			if (*c == '/')
				last = c;
		if (last) {
			memmove(open + 1, last + 1, strlen(last + 1) + 1);
			break;
		}
	}
}

/* Label cut to what fits in w pixels ("" when not even 3 characters do). */
static void flamegraph_fit(FILE *f, const char *full, double w)
{
	char label[4096];
	flamegraph_short(label, sizeof label, full);
	int chars = (int)((w - 6) / FLAME_CHAR_W);
	if (chars < 3)
		return;
	size_t len = strlen(label);
	if (len <= (size_t)chars) {
		output_xml_str(f, label);
		return;
	}
	/* cut on a UTF-8 character boundary */
	size_t cut = (size_t)chars - 2;
	while (cut > 0 && ((unsigned char)label[cut] & 0xc0) == 0x80)
		cut--;
	label[cut] = '\0';
	output_xml_str(f, label);
	fputs("..", f);
}

static const char flamegraph_script[] =
	"var svg, frames, details, matched, searching = null, zoomed = null, W, PAD = 10, CW = 7.2;\n"
	"function init(evt) {\n"
	"  svg = document.documentElement; W = +svg.getAttribute('width');\n"
	"  frames = document.getElementById('frames');\n"
	"  details = document.getElementById('details').firstChild;\n"
	"  matched = document.getElementById('matched').firstChild;\n"
	"  for (var g = frames.firstElementChild; g; g = g.nextElementSibling) {\n"
	"    var r = g.querySelector('rect');\n"
	"    g.ox = +r.getAttribute('x'); g.ow = +r.getAttribute('width'); g.oy = +r.getAttribute('y');\n"
	"    g.info = g.querySelector('title').textContent; g.full = g.info.split('\\n')[0]; g.lbl = shortLabel(g.full);\n"
	"  }\n"
	"  frames.addEventListener('mouseover', function (e) { var g = frame(e.target); if (g) details.nodeValue = g.info.replace('\\n', ' \\u2014 '); });\n"
	"  frames.addEventListener('mouseout', function () { details.nodeValue = ' '; });\n"
	"  frames.addEventListener('click', function (e) { var g = frame(e.target); if (g) zoom(g); });\n"
	"  document.getElementById('reset').addEventListener('click', unzoom);\n"
	"  document.getElementById('search').addEventListener('click', search);\n"
	"}\n"
	"function shortLabel(s) { return s.replace(/^[^\\s:(]*\\//, '').replace(/\\([^\\s:()]*\\//, '('); }\n"
	"function frame(n) { while (n && n.parentNode !== frames) n = n.parentNode; return n; }\n"
	"function place(g, x, w) {\n"
	"  var r = g.querySelector('rect'), t = g.querySelector('text');\n"
	"  r.setAttribute('x', x.toFixed(2)); r.setAttribute('width', w.toFixed(2));\n"
	"  t.setAttribute('x', (x + 3).toFixed(2));\n"
	"  var n = Math.floor((w - 6) / CW), s = g.lbl;\n"
	"  t.textContent = n < 3 ? '' : s.length <= n ? s : s.substring(0, n - 2) + '..';\n"
	"  g.style.display = '';\n"
	"}\n"
	"function zoom(z) {\n"
	"  var x0 = z.ox, w0 = z.ow, y0 = z.oy, scale = (W - 2 * PAD) / w0, eps = 0.005;\n"
	"  zoomed = z;\n"
	"  for (var g = frames.firstElementChild; g; g = g.nextElementSibling) {\n"
	"    var inside = g.ox >= x0 - eps && g.ox + g.ow <= x0 + w0 + eps;\n"
	"    if (g.oy > y0 && g.ox <= x0 + eps && g.ox + g.ow >= x0 + w0 - eps) {\n"
	"      place(g, PAD, W - 2 * PAD); g.style.opacity = 0.6;\n"
	"    } else if (g.oy <= y0 && inside) {\n"
	"      place(g, PAD + (g.ox - x0) * scale, g.ow * scale); g.style.opacity = '';\n"
	"    } else {\n"
	"      g.style.display = 'none';\n"
	"    }\n"
	"  }\n"
	"  document.getElementById('reset').style.opacity = 1;\n"
	"}\n"
	"function unzoom() {\n"
	"  zoomed = null;\n"
	"  for (var g = frames.firstElementChild; g; g = g.nextElementSibling) { place(g, g.ox, g.ow); g.style.opacity = ''; }\n"
	"  document.getElementById('reset').style.opacity = 0.3;\n"
	"}\n"
	"function search() {\n"
	"  if (searching !== null) { searching = null; mark(null); return; }\n"
	"  var term = prompt('Search frames (regular expression)', '');\n"
	"  if (!term) return;\n"
	"  try { searching = new RegExp(term); } catch (e) { searching = null; alert(e); return; }\n"
	"  mark(searching);\n"
	"}\n"
	"function mark(re) {\n"
	"  var spans = [], total = 0, root = frames.lastElementChild;\n"
	"  for (var g = frames.firstElementChild; g; g = g.nextElementSibling) {\n"
	"    var r = g.querySelector('rect');\n"
	"    if (!r.orig) r.orig = r.getAttribute('fill');\n"
	"    var hit = re && re.test(g.full);\n"
	"    r.setAttribute('fill', hit ? 'rgb(230,0,230)' : r.orig);\n"
	"    if (hit) spans.push([g.ox, g.ox + g.ow]);\n"
	"  }\n"
	"  spans.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });\n"
	"  var end = -1;\n"
	"  for (var i = 0; i < spans.length; i++) {\n"
	"    if (spans[i][0] >= end) { total += spans[i][1] - spans[i][0]; end = spans[i][1]; }\n"
	"    else if (spans[i][1] > end) { total += spans[i][1] - end; end = spans[i][1]; }\n"
	"  }\n"
	"  matched.nodeValue = re && root ? 'Matched: ' + (100 * total / root.ow).toFixed(1) + '%' : ' ';\n"
	"  document.getElementById('search').firstChild.nodeValue = re ? 'Clear search' : 'Search';\n"
	"}\n";

typedef struct flamegraph_svg {
	FILE *f;
	const flametree_t *t;
	const flame_node_t *nodes;
	double scale;     /* pixels per byte */
	uint64_t total;
	int height;
	uint32_t max_depth;
} flamegraph_svg_t;

static void flamegraph_frame(flamegraph_svg_t *s, uint32_t id, double x)
{
	const flame_node_t *n = &s->nodes[id];
	const char *label = flametree_label(s->t, n->label);
	double w = (double)n->total * s->scale;
	double y = s->height - FLAME_BOTTOM - (double)(n->depth + 1) * FLAME_FRAME_H;
	char b1[UNITS_BUF], b2[UNITS_BUF];
	FILE *f = s->f;
	fputs("<g><title>", f);
	output_xml_str(f, label);
	fprintf(f, "\n%s (%s bytes, %.2f%%)</title>", units_bytes(b1, n->total), units_count(b2, n->total),
		s->total ? 100.0 * (double)n->total / (double)s->total : 0.0);
	fprintf(f, "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%d\" fill=\"#%06x\" rx=\"2\"/>", x, y,
		w, FLAME_FRAME_H - 1, flamegraph_color(label, n->kind));
	fprintf(f, "<text x=\"%.2f\" y=\"%.0f\">", x + 3, y + FLAME_FRAME_H - 4.5);
	flamegraph_fit(f, label, w);
	fputs("</text></g>\n", f);
}

/* Frames are written children first, so the root comes last (the script finds it there). */
static void flamegraph_frames(flamegraph_svg_t *s)
{
	uint32_t n;
	const flame_node_t *nodes = s->nodes;
	flametree_nodes(s->t, &n);
	double *x = malloc((size_t)n * sizeof *x);
	uint32_t *stack = malloc((size_t)(n + 1) * sizeof *stack);
	uint8_t *expanded = calloc(n, 1);
	if (!x || !stack || !expanded)
		abort();
	size_t sp = 0;
	x[0] = FLAME_PAD;
	stack[sp++] = 0;
	while (sp) {
		uint32_t id = stack[sp - 1];
		if (!expanded[id]) {
			expanded[id] = 1;
			/* children left to right, pushed in reverse so the leftmost comes first */
			double cx = x[id];
			size_t first = sp;
			for (uint32_t c = nodes[id].child; c; c = nodes[c].sibling) {
				double w = (double)nodes[c].total * s->scale;
				if (w >= FLAME_MIN_PX) {
					x[c] = cx;
					stack[sp++] = c;
				}
				cx += w;
			}
			for (size_t a = first, b = sp; a + 1 < b; a++, b--) {
				uint32_t tmp = stack[a];
				stack[a] = stack[b - 1];
				stack[b - 1] = tmp;
			}
			continue;
		}
		sp--;
		flamegraph_frame(s, id, x[id]);
	}
	free(x);
	free(stack);
	free(expanded);
}

/* `m`: several processes' stacks (p is its first profile), else NULL. */
static void flamegraph_svg(FILE *f, const profile_t *p, const merge_t *m, const flametree_t *t, int metric)
{
	uint32_t n;
	const flame_node_t *nodes = flametree_nodes(t, &n);
	flamegraph_svg_t s = {f, t, nodes, 0, nodes[0].total, 0, 0};
	double plot_w = FLAME_WIDTH - 2 * FLAME_PAD;
	s.scale = s.total ? plot_w / (double)s.total : 0;
	for (uint32_t i = 1; i < n; i++)
		if (nodes[i].depth > s.max_depth && (double)nodes[i].total * s.scale >= FLAME_MIN_PX)
			s.max_depth = nodes[i].depth;
	s.height = FLAME_TOP + (int)(s.max_depth + 1) * FLAME_FRAME_H + FLAME_BOTTOM;
	char b1[UNITS_BUF], b2[UNITS_BUF], b3[UNITS_BUF];

	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		   "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%d\""
		   " viewBox=\"0 0 %.0f %d\" onload=\"init(evt)\">\n",
		FLAME_WIDTH, s.height, FLAME_WIDTH, s.height);
	fputs("<style>\n"
	      "text { font-family: monospace; font-size: 12px; fill: #000; }\n"
	      "#title { font-size: 16px; }\n"
	      "#frames text { pointer-events: none; }\n"
	      "#frames rect:hover { stroke: #000; stroke-width: 0.5; cursor: pointer; }\n"
	      ".ctl { cursor: pointer; fill: #2060c0; }\n"
	      "</style>\n<script type=\"text/ecmascript\"><![CDATA[\n",
	      f);
	fputs(flamegraph_script, f);
	fputs("]]></script>\n", f);
	fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%d\" fill=\"#f8f8f4\"/>\n", FLAME_WIDTH, s.height);
	fprintf(f, "<text id=\"title\" x=\"%.0f\" y=\"24\" text-anchor=\"middle\">", FLAME_WIDTH / 2);
	fputs("memprof flamegraph: ", f);
	const profile_t *title = m ? &m->p[m->first] : p;
	output_xml_str(f, title->db.command[0] ? title->db.command : "(unknown command)");
	fputs("</text>\n", f);
	fprintf(f, "<text id=\"subtitle\" x=\"%.0f\" y=\"44\" text-anchor=\"middle\">", FLAME_WIDTH / 2);
	fprintf(f, "%s: %s (%s bytes) in all; ", flamegraph_metric_what[metric], units_bytes(b1, s.total),
		units_count(b2, s.total));
	if (m)
		fprintf(f, "%zu processes, peak heap %s at %.3f s (all together)", m->n, units_bytes(b3, m->peak_heap),
			m->peak_time_s);
	else
		fprintf(f, "pid %" PRId64 ", peak heap %s at %.3f s", p->db.pid, units_bytes(b3, p->pass.peak_heap),
			p->peak_time_s);
	for (size_t i = 0; i < (m ? m->n : 1); i++) {
		const profile_t *q = m ? &m->p[i] : p;
		char who[40] = "";
		if (m)
			snprintf(who, sizeof who, "pid %" PRId64 ": ", q->db.pid);
		if (q->pass.sample_bytes > 0)
			fprintf(f, "; %ssampled (one per %s allocated): estimates", who,
				units_bytes(b1, (uint64_t)q->pass.sample_bytes));
		if (q->db.stopped_reason) {
			fprintf(f, "; %srecording stopped at %.3f s (", who, db_seconds(&q->db, q->db.stopped_ticks));
			output_xml_str(f, q->db.stopped_reason);
			fputs("): nothing after it is counted", f);
		}
	}
	fputs("</text>\n", f);
	fprintf(f, "<text id=\"reset\" class=\"ctl\" x=\"%.0f\" y=\"24\" style=\"opacity:0.3\">Reset zoom</text>\n",
		FLAME_PAD);
	fprintf(f, "<text id=\"search\" class=\"ctl\" x=\"%.0f\" y=\"24\" text-anchor=\"end\">Search</text>\n",
		FLAME_WIDTH - FLAME_PAD);
	fprintf(f, "<text id=\"matched\" x=\"%.0f\" y=\"%d\" text-anchor=\"end\"> </text>\n",
		FLAME_WIDTH - FLAME_PAD, s.height - 12);
	fprintf(f, "<text id=\"details\" x=\"%.0f\" y=\"%d\"> </text>\n", FLAME_PAD, s.height - 12);
	fputs("<g id=\"frames\">\n", f);
	if (s.total)
		flamegraph_frames(&s);
	fputs("</g>\n", f);
	if (!s.total)
		fprintf(f, "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">(no %s)</text>\n", FLAME_WIDTH / 2,
			FLAME_TOP + 4, flamegraph_metric_what[metric]);
	fputs("</svg>\n", f);
}

int flamegraph_run(profile_t *p, merge_t *m, const cmd_opts_t *o, FILE *out)
{
	flametree_t *t = flametree_new();
	for (size_t i = 0; t && i < (m ? m->n : 1); i++)
		if (flametree_add(t, m ? &m->p[i] : p, (flame_metric_t)o->metric)) {
			flametree_free(t);
			t = NULL;
		}
	if (!t) {
		fputs("memprof: flamegraph: out of memory\n", stderr);
		return 1;
	}
	flametree_finish(t);
	if (strcmp(o->format, "folded") == 0)
		flamegraph_folded(out, t);
	else
		flamegraph_svg(out, p, m, t, o->metric);
	flametree_free(t);
	return 0;
}
