/* stacks: `peak` and `leaks`, whole stacks live at the heap peak / at end of program,
 * one entry per stack, largest first. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "addrmap.h"
#include "cmd.h"
#include "merge.h"
#include "locate.h"
#include "output.h"
#include "units.h"

#define STACKS_TEXT_LIMIT 20

typedef struct stacks_entry {
	uint32_t node;
	uint32_t proc; /* the profile the node is of (several processes: merge.h) */
	bool several;  /* stacks of other processes read the same and are in it */
	uint64_t bytes;
	uint64_t blocks;
} stacks_entry_t;

static int stacks_cmp(const void *pa, const void *pb)
{
	const stacks_entry_t *a = pa, *b = pb;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	if (a->blocks != b->blocks)
		return a->blocks > b->blocks ? -1 : 1;
	if (a->proc != b->proc)
		return a->proc < b->proc ? -1 : 1;
	return a->node < b->node ? -1 : a->node > b->node;
}

typedef struct stacks_print {
	FILE *f;
	int json;
	int n;
} stacks_print_t;

static void stacks_frame(void *arg, const locate_frame_t *fr)
{
	stacks_print_t *sp = arg;
	FILE *f = sp->f;
	if (sp->json) {
		fputs(sp->n++ ? ",{\"function\":" : "{\"function\":", f);
		output_json_str(f, fr->function);
		fputs(",\"file\":", f);
		output_json_str(f, fr->file);
		fprintf(f, ",\"line\":%d,\"module\":", fr->line);
		output_json_str(f, fr->module);
		fprintf(f, ",\"python\":%s%s}", fr->python ? "true" : "false", fr->truncated ? ",\"truncated\":true" : "");
		return;
	}
	sp->n++;
	if (fr->truncated)
		fprintf(f, "      %s\n", fr->function);
	else if (fr->file && fr->line > 0)
		fprintf(f, "      %s:%d %s\n", fr->file, fr->line, fr->function);
	else
		fprintf(f, "      %s (%s)\n", fr->function, fr->module ? fr->module : "??");
}

/* Stacks that print the same are one entry: two nodes can show the same frames (two
 * instructions of one Python line, two return addresses in one native line), and two
 * entries with the same text and their bytes split between them would say less than
 * one. Each node gets a display id: its caller's, then each of its frames (outermost
 * first) interned under it as a location. Several processes' stacks (merge.h) share the
 * display ids: their frames are interned in the first profile's locator (`keys`), so a
 * stack that reads the same in two processes is one entry. */
typedef struct stacks_disp {
	locate_t *l;    /* the profile whose nodes are read */
	locate_t *keys; /* where the frames' locations are interned */
	const db_t *db;
	uint32_t *memo; /* node -> display id + 1; 0: not known yet */
	addrmap_t ids;  /* (caller's display id << 32 | location) -> display id */
	uint32_t n;     /* display ids given */
	uint32_t frames[256]; /* the locations of one node's frames, innermost first */
	unsigned n_frames;
	uint32_t *path; /* nodes from one to its nearest known caller */
	size_t path_cap;
} stacks_disp_t;

static void stacks_disp_frame(void *arg, const locate_frame_t *fr)
{
	stacks_disp_t *d = arg;
	if (d->n_frames < sizeof d->frames / sizeof *d->frames)
		d->frames[d->n_frames++] = locate_intern(d->keys, fr->file ? fr->file : fr->module ? fr->module : "",
							 fr->file ? fr->line : 0, fr->function ? fr->function : "");
}

static uint32_t stacks_disp_step(stacks_disp_t *d, uint32_t parent, uint32_t loc)
{
	uint64_t key = (uint64_t)parent << 32 | loc;
	addrmap_entry_t *e = addrmap_get(&d->ids, key);
	if (e)
		return e->a;
	if (addrmap_put(&d->ids, key, ++d->n, 0, NULL) < 0)
		abort();
	return d->n;
}

static uint32_t stacks_display(stacks_disp_t *d, uint32_t node)
{
	size_t k = 0;
	uint32_t m = node;
	for (; m != 0 && m < d->db->n_nodes && d->db->nodes[m].present && !d->memo[m]; m = d->db->nodes[m].parent) {
		if (k == d->path_cap) {
			d->path_cap = d->path_cap ? 2 * d->path_cap : 256;
			d->path = realloc(d->path, d->path_cap * sizeof *d->path);
			if (!d->path)
				abort();
		}
		d->path[k++] = m;
	}
	uint32_t id = m != 0 && m < d->db->n_nodes && d->memo[m] ? d->memo[m] - 1 : 0;
	while (k--) {
		d->n_frames = 0;
		locate_node_frames(d->l, d->path[k], stacks_disp_frame, d);
		while (d->n_frames)
			id = stacks_disp_step(d, id, d->frames[--d->n_frames]);
		d->memo[d->path[k]] = id + 1;
	}
	return id;
}

static uint64_t stacks_bytes(const pass_stack_t *st, int leaks, bool never)
{
	return !leaks ? st->peak_bytes : never ? st->live_bytes : st->end_bytes;
}

static uint64_t stacks_blocks(const pass_stack_t *st, int leaks, bool never)
{
	return !leaks ? st->peak_count : never ? st->live_count : st->end_count;
}

/* `m`: several processes' stacks (p is m's first profile), else NULL. */
int stacks_run(profile_t *p, merge_t *m, const cmd_opts_t *o, FILE *out, int leaks)
{
	size_t n_procs = m ? m->n : 1;
	/* leaks --never-freed: what no free ever released (after the interpreter's
	 * teardown, in Python), not what was live at the end of the program */
	bool never = leaks && o->never_freed;
	size_t n_all = 0;
	for (size_t k = 0; k < n_procs; k++)
		n_all += (m ? &m->p[k] : p)->pass.n_stacks;
	stacks_entry_t *e = malloc((n_all + 1) * sizeof *e);
	uint32_t **disp = calloc(n_procs, sizeof *disp);
	if (!e || !disp)
		abort();
	size_t n = 0;
	uint64_t total = 0;
	/* one entry a display id (stacks_disp); with --focus, each stack cut at its focused
	 * frame first */
	stacks_disp_t d = {.keys = p->locate};
	if (addrmap_init(&d.ids, 1024) < 0)
		abort();
	for (size_t k = 0; k < n_procs; k++) {
		profile_t *q = m ? &m->p[k] : p;
		const pass_t *ps = &q->pass;
		d.l = q->locate;
		d.db = &q->db;
		d.memo = calloc(ps->n_stacks, sizeof *d.memo);
		disp[k] = malloc(ps->n_stacks * sizeof *disp[k]);
		if (!d.memo || !disp[k])
			abort();
		for (uint32_t s = 0; s < ps->n_stacks; s++) {
			const pass_stack_t *st = pass_stack(ps, s);
			if (stacks_bytes(st, leaks, never) || stacks_blocks(st, leaks, never))
				disp[k][s] = stacks_display(&d, locate_focus_node(q->locate, s));
		}
		free(d.memo);
	}
	uint32_t *slot = malloc((d.n + 1) * sizeof *slot);
	if (!slot)
		abort();
	memset(slot, 0xff, (d.n + 1) * sizeof *slot);
	for (size_t k = 0; k < n_procs; k++) {
		profile_t *q = m ? &m->p[k] : p;
		const pass_t *ps = &q->pass;
		for (uint32_t s = 0; s < ps->n_stacks; s++) {
			const pass_stack_t *st = pass_stack(ps, s);
			uint64_t bytes = stacks_bytes(st, leaks, never);
			uint64_t blocks = stacks_blocks(st, leaks, never);
			if (!bytes && !blocks)
				continue;
			total += bytes;
			uint32_t id = disp[k][s];
			if (slot[id] != UINT32_MAX) {
				e[slot[id]].bytes += bytes;
				e[slot[id]].blocks += blocks;
				e[slot[id]].several |= e[slot[id]].proc != k;
				continue;
			}
			slot[id] = (uint32_t)n;
			e[n++] = (stacks_entry_t){locate_focus_node(q->locate, s), (uint32_t)k, false, bytes, blocks};
		}
		free(disp[k]);
	}
	free(slot);
	free(disp);
	addrmap_free(&d.ids);
	free(d.path);
	qsort(e, n, sizeof *e, stacks_cmp);
	int json = strcmp(o->format, "json") == 0;
	long limit = o->limit >= 0 ? o->limit : json ? 0 : STACKS_TEXT_LIMIT;
	size_t shown = limit > 0 && (size_t)limit < n ? (size_t)limit : n;
	stacks_print_t sp = {out, json, 0};
	if (json) {
		fputc('{', out);
		if (m)
			merge_json_header(out, m);
		else
			profile_json_header(out, p);
		fprintf(out, ",\"total_bytes\":%" PRIu64 "%s,\"stacks_total\":%zu,\"stacks\":[", total,
			leaks ? (never ? ",\"never_freed\":true" : ",\"never_freed\":false") : "", n);
		for (size_t i = 0; i < shown; i++) {
			fprintf(out, "%s\n {\"stack\":%" PRIu32, i ? "," : "", e[i].node);
			if (m) /* the process whose node "stack" is */
				fprintf(out, ",\"pid\":%" PRId64, m->p[e[i].proc].db.pid);
			fprintf(out, ",\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"frames\":[", e[i].bytes, e[i].blocks);
			sp.n = 0;
			locate_walk(m ? m->p[e[i].proc].locate : p->locate, e[i].node, stacks_frame, &sp);
			fputs("]}", out);
		}
		fputs("\n]}\n", out);
	} else {
		char b1[UNITS_BUF], b2[UNITS_BUF];
		if (m)
			merge_text_header(out, m, leaks ? "leaks" : "peak");
		else
			profile_text_header(out, p, leaks ? "leaks" : "peak");
		if (never)
			fprintf(out, "%s never freed in %zu stack%s\n\n", units_bytes(b1, total), n, units_s(n));
		else if (leaks)
			fprintf(out, "%s live at %s in %zu stack%s\n\n", units_bytes(b1, total),
				m ? "each process's end" : p->pass.has_end ? "end of program" : "exit", n, units_s(n));
		else
			fprintf(out, "%s live at the peak (%.3f s%s) in %zu stack%s\n\n", units_bytes(b1, total),
				m ? m->peak_time_s : p->peak_time_s, m ? ", all processes together" : "", n, units_s(n));
		for (size_t i = 0; i < shown; i++) {
			fprintf(out, "#%zu  %s in %s block%s (%.1f%%)\n", i + 1, units_bytes(b1, e[i].bytes),
				units_count(b2, e[i].blocks), e[i].blocks == 1 ? "" : "s",
				total ? 100.0 * (double)e[i].bytes / (double)total : 0.0);
			if (m)
				fprintf(out, "    (pid %" PRId64 "%s)\n", m->p[e[i].proc].db.pid,
					e[i].several ? " and others" : "");
			sp.n = 0;
			locate_walk(m ? m->p[e[i].proc].locate : p->locate, e[i].node, stacks_frame, &sp);
			if (!sp.n)
				fputs("      <no stack>\n", out);
			fputc('\n', out);
		}
		if (shown < n)
			fprintf(out, "... %zu more stacks (--limit=0 shows all)\n", n - shown);
	}
	free(e);
	return 0;
}
