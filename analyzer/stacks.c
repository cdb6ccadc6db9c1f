/* stacks: `peak` and `leaks`, whole stacks live at the heap peak / at end of program,
 * one entry per stack, largest first. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "output.h"
#include "units.h"

#define STACKS_TEXT_LIMIT 20

typedef struct stacks_entry {
	uint32_t node;
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

int stacks_run(profile_t *p, const cmd_opts_t *o, FILE *out, int leaks)
{
	const pass_t *ps = &p->pass;
	stacks_entry_t *e = malloc((ps->n_stacks + 1) * sizeof *e);
	if (!e)
		abort();
	size_t n = 0;
	uint64_t total = 0;
	for (uint32_t s = 0; s < ps->n_stacks; s++) {
		const pass_stack_t *st = &ps->stacks[s];
		uint64_t bytes = leaks ? st->end_bytes : st->peak_bytes;
		uint64_t blocks = leaks ? st->end_count : st->peak_count;
		if (!bytes && !blocks)
			continue;
		e[n++] = (stacks_entry_t){s, bytes, blocks};
		total += bytes;
	}
	qsort(e, n, sizeof *e, stacks_cmp);
	int json = strcmp(o->format, "json") == 0;
	long limit = o->limit >= 0 ? o->limit : json ? 0 : STACKS_TEXT_LIMIT;
	size_t shown = limit > 0 && (size_t)limit < n ? (size_t)limit : n;
	stacks_print_t sp = {out, json, 0};
	if (json) {
		fputc('{', out);
		profile_json_header(out, p);
		fprintf(out, ",\"total_bytes\":%" PRIu64 ",\"stacks\":[", total);
		for (size_t i = 0; i < shown; i++) {
			fprintf(out, "%s\n {\"stack\":%" PRIu32 ",\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64
				     ",\"frames\":[",
				i ? "," : "", e[i].node, e[i].bytes, e[i].blocks);
			sp.n = 0;
			locate_walk(p->locate, e[i].node, stacks_frame, &sp);
			fputs("]}", out);
		}
		fputs("\n]}\n", out);
	} else {
		char b1[UNITS_BUF], b2[UNITS_BUF];
		profile_text_header(out, p, leaks ? "leaks" : "peak");
		if (leaks)
			fprintf(out, "%s live at %s in %zu stacks\n\n", units_bytes(b1, total),
				ps->has_end ? "end of program" : "exit", n);
		else
			fprintf(out, "%s live at the peak (%.3f s) in %zu stacks\n\n", units_bytes(b1, total),
				p->peak_time_s, n);
		for (size_t i = 0; i < shown; i++) {
			fprintf(out, "#%zu  %s in %s blocks (%.1f%%)\n", i + 1, units_bytes(b1, e[i].bytes),
				units_count(b2, e[i].blocks),
				total ? 100.0 * (double)e[i].bytes / (double)total : 0.0);
			sp.n = 0;
			locate_walk(p->locate, e[i].node, stacks_frame, &sp);
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
