/* lines: memory_profiler's line-by-line view of one Python file or function, without
 * decorating anything: every line with the bytes it holds at the global heap peak, what
 * it allocated, how often, and what is still live at the end, next to its source text.
 *
 * The file is given as a path suffix (`app.py`, `pkg/app.py`) or an absolute path and
 * matched against the code objects' (normalized) file names, relative names taken from
 * the program's working directory. Each allocation is charged to the innermost Python
 * frame in that file, as `report --focus=FILE` does; with `:FUNCTION` (a qualname such as
 * `Parser.parse`, or a plain name) to the innermost frame of that function or of code
 * nested in it (comprehensions, inner functions), and the lines listed are the ones the
 * function's code objects cover (from their line tables), from its `def` on.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "merge.h"
#include "output.h"
#include "paths.h"
#include "pyline.h"
#include "source.h"
#include "units.h"

/* A function's listing is cut after this many lines of a (damaged) line range. */
#define LINES_MAX_RANGE 100000

typedef struct lines_row {
	int line; /* 0: allocations whose frame has no line */
	uint64_t peak, allocated, count, end, leaked;
} lines_row_t;

typedef struct lines_view {
	const char *file;     /* display name of the matched file */
	const char *function; /* NULL: the whole file */
	uint8_t *code;        /* per pycode index: its frames are charged */
	int first, last;      /* function: the lines it covers */
	lines_row_t *rows;    /* sorted by line, one per line (lines_finish); before: as charged */
	size_t n_rows, cap_rows;
	lines_row_t total;
	lines_row_t cut; /* stacks cut short (deeper than memprof keeps) with no frame charged */
} lines_view_t;

__attribute__((format(printf, 1, 2))) static int lines_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("memprof: lines: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

/* Absolute normalized form of a code object's file name (relative names are relative
 * to the program's working directory); names like <string> are returned as they are. */
static char *lines_abs(const char *name, const char *cwd)
{
	size_t n = strlen(name) + (cwd ? strlen(cwd) : 0) + 2;
	char *out = malloc(n);
	if (!out)
		abort();
	if (name[0] != '/' && name[0] != '<' && cwd)
		snprintf(out, n, "%s/%s", cwd, name);
	else
		snprintf(out, n, "%s", name);
	return paths_normalize(out);
}

static bool lines_matches(const char *abs, const char *display, const char *want, bool want_abs)
{
	if (display[0] == '<' || want[0] == '<')
		return strcmp(display, want) == 0;
	if (want_abs)
		return strcmp(abs, want) == 0;
	return paths_has_suffix(display, want) || paths_has_suffix(abs, want);
}

/* The one file matching `want`: its absolute form (malloc) and display name, or NULL;
 * *other is set to a second, different match when there is one. */
static char *lines_scan(const db_t *db, const char *want, bool want_abs, const char **display,
			const char **other)
{
	char *found = NULL;
	*other = NULL;
	for (size_t i = 0; i < db->n_pycode && !*other; i++) {
		const db_pycode_t *c = &db->pycode[i];
		if (!c->filename[0])
			continue;
		char *abs = lines_abs(c->filename, db->cwd);
		if (lines_matches(abs, c->filename, want, want_abs) && !found) {
			found = abs;
			*display = c->filename;
			continue;
		}
		if (lines_matches(abs, c->filename, want, want_abs) && strcmp(found, abs) != 0)
			*other = c->filename;
		free(abs);
	}
	return found;
}

/* Finds the file: a path suffix, an absolute path, or (when that is ambiguous or finds
 * nothing, and always for ./ and ../ names) a path relative to our working directory.
 * Sets v->file and returns the absolute form (malloc), or NULL after saying why (`quiet`:
 * a file that is not there is not said; one that is ambiguous always is, *ambiguous set). */
static char *lines_find_file(const profile_t *p, lines_view_t *v, const char *arg, bool quiet, bool *ambiguous)
{
	const db_t *db = &p->db;
	char cwd[PATH_MAX];
	bool explicit_rel = strncmp(arg, "./", 2) == 0 || strncmp(arg, "../", 3) == 0;
	char *want = strdup(arg);
	if (!want)
		abort();
	paths_normalize(want);
	char *local = NULL; /* arg taken relative to our working directory */
	if (want[0] != '/' && want[0] != '<' && getcwd(cwd, sizeof cwd))
		local = lines_abs(want, cwd);
	const char *other = NULL, *local_other = NULL, *display = NULL;
	char *found = explicit_rel ? NULL : lines_scan(db, want, want[0] == '/', &display, &other);
	if ((!found || other) && local) {
		const char *ld = NULL;
		char *lf = lines_scan(db, local, true, &ld, &local_other);
		if (lf) {
			free(found);
			found = lf;
			display = ld;
			other = NULL;
		}
	}
	if (found && other) {
		lines_fail("'%s' matches several files (%s, %s): give more of the path", arg, display, other);
		free(found);
		found = NULL;
		*ambiguous = true;
	} else if (!found && !quiet) {
		lines_fail("no Python code from '%s' in this profile", arg);
	}
	v->file = display;
	free(want);
	free(local);
	return found;
}

/* Whether code c is nested in `outer`'s code, whose own lines are lo to hi: all of the
 * file's code in its module's (whose functions' qualnames do not name it); inner
 * functions and classes by qualname (f.<locals>.g, C.m); before 3.11, whose code objects
 * have bare names, the code whose first line is among the outer code's own lines, where
 * its def statement is. */
static bool lines_nested_in(const db_t *db, const db_pycode_t *c, const db_pycode_t *outer, int lo, int hi)
{
	if (strcmp(outer->qualname, "<module>") == 0)
		return true;
	if (db->py_bare_names)
		return c->firstlineno >= lo && c->firstlineno <= hi;
	size_t n = strlen(outer->qualname);
	return strncmp(c->qualname, outer->qualname, n) == 0 && c->qualname[n] == '.';
}

/* Whether a function is worth naming in the list of a file's functions: not code whose
 * own name is <lambda>, <listcomp> and the like (the module is named). */
static bool lines_listed(const char *qualname)
{
	const char *last = strrchr(qualname, '.');
	last = last ? last + 1 : qualname;
	return qualname[0] && (last[0] != '<' || strcmp(qualname, "<module>") == 0);
}

/* Marks the code objects whose frames are charged; for a function also its line range.
 * Returns 0; 1 when the function is not in the file (said unless `quiet`); 2 when its
 * name fits several (said). */
static int lines_select(const profile_t *p, lines_view_t *v, const char *abs, bool quiet)
{
	const db_t *db = &p->db;
	size_t n = db->n_pycode;
	uint8_t *in_file = calloc(n + 1, 1);
	v->code = calloc(n + 1, 1);
	if (!in_file || !v->code)
		abort();
	for (size_t i = 0; i < n; i++) {
		char *a = lines_abs(db->pycode[i].filename, db->cwd);
		in_file[i] = strcmp(a, abs) == 0;
		free(a);
	}
	if (!v->function) {
		memcpy(v->code, in_file, n);
		free(in_file);
		return 0;
	}
	/* the function itself: by qualname, else by plain name */
	uint8_t *self = calloc(n + 1, 1);
	if (!self)
		abort();
	bool any = false;
	int by_name = 0;
	for (; by_name < 2 && !any; by_name++)
		for (size_t i = 0; i < n; i++) {
			const db_pycode_t *c = &db->pycode[i];
			if (in_file[i] && strcmp(by_name ? c->name : c->qualname, v->function) == 0)
				self[i] = 1, any = true;
		}
	/* the file's functions by qualname, each once, in the order the profile has them:
	 * those a plain name fits (ambiguous when two), or all of them (no such function) */
	char names[640] = "";
	size_t used = 0;
	int listed = 0, left = 0;
	for (size_t i = 0; i < n; i++) {
		const db_pycode_t *c = &db->pycode[i];
		if (!in_file[i] || (any ? !self[i] : !lines_listed(c->qualname)) || !c->qualname[0])
			continue;
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = in_file[k] && (!any || self[k]) && strcmp(db->pycode[k].qualname, c->qualname) == 0;
		if (seen)
			continue;
		int w = left ? -1 : snprintf(names + used, sizeof names - used, "%s%s", listed ? ", " : "", c->qualname);
		if (w < 0 || (size_t)w >= sizeof names - 40 - used) {
			names[used] = 0;
			left++;
			continue;
		}
		used += (size_t)w;
		listed++;
	}
	if (left)
		snprintf(names + used, sizeof names - used, " and %d more", left);
	if (!any || (by_name == 2 && listed + left > 1)) {
		free(self);
		free(in_file);
		if (any)
			return 1 + lines_fail("'%s' in %s is %s: name one", v->function, v->file, names);
		if (quiet)
			return 1;
		return lines_fail("no function '%s' in %s (the profile has: %s)", v->function, v->file,
				  listed ? names : "no functions");
	}
	size_t *selves = malloc((n + 1) * sizeof *selves), n_selves = 0;
	int *self_lo = malloc((n + 1) * sizeof *self_lo), *self_hi = malloc((n + 1) * sizeof *self_hi);
	if (!selves || !self_lo || !self_hi)
		abort();
	for (size_t i = 0; i < n; i++)
		if (self[i]) {
			const db_pycode_t *c = &db->pycode[i];
			if (pyline_range(c->linetable, c->linetable_len, c->firstlineno, &self_lo[n_selves],
					 &self_hi[n_selves]) != 0)
				self_lo[n_selves] = 1, self_hi[n_selves] = 0;
			selves[n_selves++] = i;
		}
	v->first = INT_MAX;
	v->last = INT_MIN;
	for (size_t i = 0; i < n; i++) {
		const db_pycode_t *c = &db->pycode[i];
		bool take = self[i];
		for (size_t k = 0; k < n_selves && !take && in_file[i]; k++)
			take = lines_nested_in(db, c, &db->pycode[selves[k]], self_lo[k], self_hi[k]);
		if (!take)
			continue;
		v->code[i] = 1;
		int lo, hi;
		if (self[i] && c->firstlineno > 0 && c->firstlineno < v->first)
			v->first = c->firstlineno;
		if (pyline_range(c->linetable, c->linetable_len, c->firstlineno, &lo, &hi) == 0) {
			v->first = lo < v->first ? lo : v->first;
			v->last = hi > v->last ? hi : v->last;
		}
	}
	if (v->first == INT_MAX)
		v->first = 1;
	if (v->last < v->first)
		v->last = v->first;
	if (v->last - v->first > LINES_MAX_RANGE)
		v->last = v->first + LINES_MAX_RANGE;
	free(selves);
	free(self_lo);
	free(self_hi);
	free(self);
	free(in_file);
	return 0;
}

static int lines_row_cmp(const void *a, const void *b)
{
	int x = ((const lines_row_t *)a)->line, y = ((const lines_row_t *)b)->line;
	return x < y ? -1 : x > y;
}

/* Charges every stack of p to the line of its innermost frame that `code` (per pycode
 * index of p) selects, adding rows to v's (several profiles add to one view: merge.h). */
static void lines_collect(const profile_t *p, const uint8_t *code, lines_view_t *v)
{
	const db_t *db = &p->db;
	const pass_t *ps = &p->pass;
	uint32_t n = db->n_nodes;
	uint32_t *frame = calloc(n ? n : 1, sizeof *frame); /* innermost selected frame node */
	uint8_t *cut = calloc(n ? n : 1, 1); /* bit 0: cut at the root; bit 1: holds a Python frame */
	if (v->n_rows + ps->n_stacks + 1 > v->cap_rows) {
		v->cap_rows = v->n_rows + ps->n_stacks + 1;
		v->rows = realloc(v->rows, v->cap_rows * sizeof *v->rows);
	}
	lines_row_t *rows = v->rows;
	if (!frame || !cut || !rows)
		abort();
	for (uint32_t i = 1; i < n; i++) {
		const db_node_t *nd = &db->nodes[i];
		if (!nd->present)
			continue;
		frame[i] = frame[nd->parent];
		/* cut short at the Python frames kept (the marker at the root, Python frames
		 * below it: not a native stack cut short, whose marker hangs below its Python
		 * frames or has native frames alone below it) */
		bool py = mp_frame_is_python(nd->frame) && !mp_frame_is_truncated(nd->frame);
		cut[i] = cut[nd->parent] | (mp_frame_is_truncated(nd->frame) && !nd->parent) | (py ? 2 : 0);
		if (mp_frame_is_python(nd->frame)) {
			const db_pycode_t *c = db_pycode_find(db, mp_frame_code(nd->frame));
			if (c && code[c - db->pycode])
				frame[i] = i;
		}
	}
	size_t k = v->n_rows;
	for (uint32_t s = 1; s < ps->n_stacks && s < n; s++) {
		const pass_stack_t *st = pass_stack(ps, s);
		if (!st->allocations && !st->peak_bytes && !st->end_bytes && !st->live_bytes)
			continue;
		if (!frame[s]) {
			if (cut[s] == 3) {
				v->cut.allocated += st->allocated_bytes;
				v->cut.count += st->allocations;
			}
			continue;
		}
		uint64_t f = db->nodes[frame[s]].frame;
		const db_pycode_t *c = db_pycode_find(db, mp_frame_code(f));
		int line = pyline_addr2line(c->linetable, c->linetable_len, c->firstlineno, mp_frame_lasti(f));
		rows[k++] = (lines_row_t){line > 0 ? line : 0, st->peak_bytes, st->allocated_bytes,
					  st->allocations, st->end_bytes, st->live_bytes};
	}
	v->n_rows = k;
	free(frame);
	free(cut);
}

/* The rows charged, sorted by line, one per line, and their totals. */
static void lines_finish(lines_view_t *v)
{
	lines_row_t *rows = v->rows;
	size_t k = v->n_rows;
	if (!rows)
		return;
	qsort(rows, k, sizeof *rows, lines_row_cmp);
	size_t m = 0;
	for (size_t i = 0; i < k; i++) {
		lines_row_t *r = &rows[i];
		v->total.peak += r->peak;
		v->total.allocated += r->allocated;
		v->total.count += r->count;
		v->total.end += r->end;
		v->total.leaked += r->leaked;
		if (m && rows[m - 1].line == r->line) {
			lines_row_t *t = &rows[m - 1];
			t->peak += r->peak;
			t->allocated += r->allocated;
			t->count += r->count;
			t->end += r->end;
			t->leaked += r->leaked;
		} else {
			rows[m++] = *r;
		}
	}
	v->n_rows = m;
}

static void lines_csv(FILE *f, const lines_view_t *v, source_t *src)
{
	fputs("file,line,peak_bytes,allocated_bytes,allocations,end_bytes,text\n", f);
	for (size_t i = 0; i < v->n_rows; i++) {
		const lines_row_t *r = &v->rows[i];
		output_csv_str(f, v->file);
		fprintf(f, ",%d,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",", r->line, r->peak, r->allocated,
			r->count, r->end);
		output_csv_str(f, source_line_raw(src, v->file, r->line));
		fputc('\n', f);
	}
}

/* `m`: several processes' (p is its first profile), else NULL. */
static void lines_json(FILE *f, const profile_t *p, const merge_t *m, const lines_view_t *v, source_t *src)
{
	fputc('{', f);
	if (m)
		merge_json_header(f, m);
	else
		profile_json_header(f, p);
	fputs(",\"file\":", f);
	output_json_str(f, v->file);
	fputs(",\"function\":", f);
	if (v->function)
		output_json_str(f, v->function);
	else
		fputs("null", f);
	if (v->function)
		fprintf(f, ",\"first_line\":%d,\"last_line\":%d", v->first, v->last);
	fprintf(f, ",\"source_found\":%s", source_count(src, v->file) >= 0 ? "true" : "false");
	fprintf(f,
		",\"peak_bytes\":%" PRIu64 ",\"allocated_bytes\":%" PRIu64 ",\"allocations\":%" PRIu64
		",\"end_bytes\":%" PRIu64 ",\"leaked_bytes\":%" PRIu64 ",\"rows\":[",
		v->total.peak, v->total.allocated, v->total.count, v->total.end, v->total.leaked);
	for (size_t i = 0; i < v->n_rows; i++) {
		const lines_row_t *r = &v->rows[i];
		fprintf(f,
			"%s\n {\"line\":%d,\"peak_bytes\":%" PRIu64 ",\"allocated_bytes\":%" PRIu64
			",\"allocations\":%" PRIu64 ",\"end_bytes\":%" PRIu64 ",\"leaked_bytes\":%" PRIu64
			",\"text\":",
			i ? "," : "", r->line, r->peak, r->allocated, r->count, r->end, r->leaked);
		output_json_str(f, source_line_raw(src, v->file, r->line));
		fputc('}', f);
	}
	fputs("\n]}\n", f);
}

static void lines_text_row(FILE *f, int line, const lines_row_t *r, const char *text)
{
	char b1[UNITS_BUF], b2[UNITS_BUF], b3[UNITS_BUF], b4[UNITS_BUF];
	if (line > 0)
		fprintf(f, "%6d", line);
	else
		fprintf(f, "%6s", "?");
	if (r)
		fprintf(f, " %10s %10s %10s %10s", units_bytes(b1, r->peak), units_bytes(b2, r->allocated),
			units_count(b3, r->count), units_bytes(b4, r->end));
	else if (text && *text)
		fprintf(f, " %10s %10s %10s %10s", "", "", "", "");
	if (text && *text)
		fprintf(f, "  %s", text);
	fputc('\n', f);
}

static void lines_text(FILE *f, const profile_t *p, const merge_t *m, const lines_view_t *v, source_t *src)
{
	char b1[UNITS_BUF], b2[UNITS_BUF], b3[UNITS_BUF], b4[UNITS_BUF];
	if (m)
		merge_text_header(f, m, "lines");
	else
		profile_text_header(f, p, "lines");
	int n_src = source_count(src, v->file);
	fputs("\n", f);
	if (v->function)
		fprintf(f, "%s, function %s (lines %d-%d)\n", v->file, v->function, v->first, v->last);
	else
		fprintf(f, "%s\n", v->file);
	fprintf(f, "%s allocated in %s allocations, %s at the peak, %s live at end\n",
		units_bytes(b1, v->total.allocated), units_count(b2, v->total.count),
		units_bytes(b3, v->total.peak), units_bytes(b4, v->total.end));
	if (n_src < 0)
		fprintf(f, "(source not found: %s)\n", v->file);
	fprintf(f, "\n%6s %10s %10s %10s %10s  %s\n", "LINE", "PEAK", "ALLOCATED", "ALLOCS", "AT END",
		"LINE CONTENTS");
	fputs("==================================================================================\n", f);
	/* every line of the range (the file: all its lines), plus lines with data outside it */
	int lo = v->function ? v->first : 1;
	int hi = v->function ? v->last : n_src;
	size_t i = 0;
	while (i < v->n_rows && v->rows[i].line == 0)
		i++;
	for (; i < v->n_rows && v->rows[i].line < lo; i++)
		lines_text_row(f, v->rows[i].line, &v->rows[i], source_line_raw(src, v->file, v->rows[i].line));
	for (int line = lo; line <= hi && line > 0; line++) {
		const lines_row_t *r = i < v->n_rows && v->rows[i].line == line ? &v->rows[i++] : NULL;
		lines_text_row(f, line, r, source_line_raw(src, v->file, line));
	}
	for (; i < v->n_rows; i++)
		lines_text_row(f, v->rows[i].line, &v->rows[i], source_line_raw(src, v->file, v->rows[i].line));
	if (v->n_rows && v->rows[0].line == 0)
		lines_text_row(f, 0, &v->rows[0], "(no line number)");
}

/* One profile, or several processes' (m): the file (and function) is looked for in each;
 * the lines of those that have it add up. */
int lines_run(profile_t *p, merge_t *m, const cmd_opts_t *o, FILE *out)
{
	lines_view_t v = {0};
	char *arg = strdup(o->target ? o->target : "");
	if (!arg)
		abort();
	char *colon = strrchr(arg, ':');
	if (colon && colon > arg && colon[1] && !strchr(colon + 1, '/')) {
		*colon = '\0';
		v.function = colon + 1;
	}
	int rc = 1;
	size_t n = m ? m->n : 1, matched = 0;
	int first = INT_MAX, last = INT_MIN;
	bool failed = false;
	for (size_t i = 0; i < n && !failed; i++) {
		profile_t *q = m ? &m->p[i] : p;
		lines_view_t pv = {.function = v.function};
		bool ambiguous = false;
		char *abs = lines_find_file(q, &pv, arg, m != NULL, &ambiguous);
		int sel = abs ? lines_select(q, &pv, abs, m != NULL) : 1;
		failed = ambiguous || sel == 2 || (!m && sel);
		if (!sel) {
			if (!matched++)
				v.file = pv.file;
			first = pv.first < first ? pv.first : first;
			last = pv.last > last ? pv.last : last;
			lines_collect(q, pv.code, &v);
		}
		free(abs);
		free(pv.code);
	}
	if (m && !failed && !matched && v.function)
		lines_fail("no function '%s' in '%s' in these profiles", v.function, arg);
	else if (m && !failed && !matched)
		lines_fail("no Python code from '%s' in these profiles", arg);
	if (!failed && matched) {
		v.first = first;
		v.last = last;
		lines_finish(&v);
		source_t *src = m ? merge_source(m) : profile_source(p);
		if (strcmp(o->format, "csv") == 0)
			lines_csv(out, &v, src);
		else if (strcmp(o->format, "json") == 0)
			lines_json(out, p, m, &v, src);
		else
			lines_text(out, p, m, &v, src);
		source_free(src);
		if (v.cut.count) {
			char b1[UNITS_BUF], b2[UNITS_BUF];
			fprintf(stderr,
				"memprof: note: %s allocation%s (%s) in Python stacks deeper than memprof keeps (the "
				"innermost %d frames) %s no frame of %s among those kept, and may belong here too\n",
				units_count(b1, v.cut.count), v.cut.count == 1 ? "" : "s", units_bytes(b2, v.cut.allocated),
				MP_PYTHON_MAX_FRAMES, v.cut.count == 1 ? "has" : "have",
				v.function ? v.function : v.file);
		}
		rc = 0;
	}
	free(v.rows);
	free(arg);
	return rc;
}
