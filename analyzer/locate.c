/* locate: stack node -> report location, memoized per node.
 *
 * Python: py[n] is the innermost Python frame node of stack n, computed for every node
 * in id order (a parent's id is always smaller), no symbolization needed. Native: only
 * stacks without any Python frame need it; for those, nat[n] / fb[n] (innermost frame
 * with file:line outside the plumbing modules / innermost frame outside them) are built
 * lazily from the parent's answer, so each node's ip is looked at once, and each
 * distinct native frame (ip and module generation, format.h) is symbolized once
 * (ipcache).
 */
#include "locate.h"

#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addrmap.h"
#include "memprof/format.h"
#include "paths.h"
#include "pyline.h"
#include "symbolize.h"

#define LOC_NONE UINT32_MAX

typedef struct locate_ipinfo {
	uint32_t nat, fb, inner;
} locate_ipinfo_t;

struct locate {
	const db_t *db;
	char *focus; /* absolute, no trailing slash; NULL without --focus */
	symbolizer_t *sym;

	locate_loc_t *locs;
	uint32_t n_locs, cap_locs;
	uint32_t *ht; /* loc id + 1, 0 = empty */
	size_t ht_mask;

	uint32_t *py;       /* innermost Python frame node, 0 = none */
	uint32_t *focus_py; /* innermost Python frame node under focus, 0 = none */
	bool focus_matched; /* some Python frame is under focus */
	uint32_t *pyloc;    /* location of a Python frame node */
	uint32_t *nat, *fb, *inner;
	uint8_t *nat_done;
	uint32_t *result;
	int8_t *code_under; /* per pycode index: -1 unknown, 0/1 */
	addrmap_t ipcache;  /* ip -> a = index in ipinfo */
	locate_ipinfo_t *ipinfo;
	uint32_t n_ipinfo, cap_ipinfo;
	uint32_t *chain;
	size_t chain_cap;
};

static uint64_t locate_hash(const char *file, int line, const char *function)
{
	uint64_t h = UINT64_C(1469598103934665603);
	for (const char *s = file; *s; s++)
		h = (h ^ (uint8_t)*s) * UINT64_C(1099511628211);
	h = (h ^ (uint32_t)line) * UINT64_C(1099511628211);
	for (const char *s = function; *s; s++)
		h = (h ^ (uint8_t)*s) * UINT64_C(1099511628211);
	return h ^ (h >> 29);
}

static void locate_ht_insert(locate_t *l, uint32_t id)
{
	const locate_loc_t *c = &l->locs[id];
	size_t i = (size_t)locate_hash(c->file, c->line, c->function) & l->ht_mask;
	while (l->ht[i])
		i = (i + 1) & l->ht_mask;
	l->ht[i] = id + 1;
}

/* file, lexically normalized (paths.h) into buf when it needs it. Python file names are
 * normalized when loaded; this is for the source files of native frames (DWARF names
 * such as /src/build/../lib/x.c). */
static const char *locate_display_path(char *buf, size_t cap, const char *file)
{
	if (!file || !(strstr(file, "/.") || strstr(file, "//") || strncmp(file, "./", 2) == 0) ||
	    strlen(file) >= cap)
		return file;
	memcpy(buf, file, strlen(file) + 1);
	return paths_normalize(buf);
}

uint32_t locate_intern(locate_t *l, const char *file, int line, const char *function)
{
	char norm[PATH_MAX];
	file = locate_display_path(norm, sizeof norm, file);
	if (!file)
		file = "";
	if (!function)
		function = "";
	size_t i = (size_t)locate_hash(file, line, function) & l->ht_mask;
	for (; l->ht[i]; i = (i + 1) & l->ht_mask) {
		const locate_loc_t *c = &l->locs[l->ht[i] - 1];
		if (c->line == line && strcmp(c->file, file) == 0 && strcmp(c->function, function) == 0)
			return l->ht[i] - 1;
	}
	if (l->n_locs == l->cap_locs) {
		l->cap_locs = l->cap_locs ? 2 * l->cap_locs : 256;
		l->locs = realloc(l->locs, l->cap_locs * sizeof *l->locs);
		if (!l->locs)
			abort();
	}
	uint32_t id = l->n_locs++;
	l->locs[id] = (locate_loc_t){strdup(file), line, strdup(function)};
	if (2 * (size_t)l->n_locs > l->ht_mask + 1) {
		free(l->ht);
		l->ht_mask = 2 * l->ht_mask + 1;
		l->ht = calloc(l->ht_mask + 1, sizeof *l->ht);
		if (!l->ht)
			abort();
		for (uint32_t k = 0; k < l->n_locs; k++)
			locate_ht_insert(l, k);
	} else {
		l->ht[i] = id + 1;
	}
	return id;
}

const locate_loc_t *locate_get(const locate_t *l, uint32_t id)
{
	return &l->locs[id];
}

uint32_t locate_count(const locate_t *l)
{
	return l->n_locs;
}

/* Absolute (relative paths taken from `base`, or from our working directory when base
 * is NULL), symlink-resolved when it exists, without trailing slash. */
static char *locate_abspath(const char *path, const char *base)
{
	char buf[PATH_MAX];
	if (path[0] == '/' || !base) {
		if (realpath(path, buf))
			return strdup(buf);
		if (path[0] == '/')
			return strdup(path);
	}
	char cwd[PATH_MAX];
	if (base)
		snprintf(cwd, sizeof cwd, "%s", base);
	else if (!getcwd(cwd, sizeof cwd))
		return strdup(path);
	size_t n = strlen(cwd) + strlen(path) + 2;
	char *out = malloc(n);
	snprintf(out, n, "%s/%s", cwd, path);
	size_t len = strlen(out);
	while (len > 1 && out[len - 1] == '/')
		out[--len] = '\0';
	if (realpath(out, buf)) {
		free(out);
		return strdup(buf);
	}
	return out;
}

static bool locate_under(const locate_t *l, const char *filename)
{
	if (filename[0] == '<') /* <frozen ...>, <string>, <stdin> */
		return false;
	/* co_filename is relative to the profiled program's working directory. */
	char *abs = locate_abspath(filename, l->db->cwd);
	size_t n = strlen(l->focus);
	bool under = strcmp(l->focus, "/") == 0 ||
		     (strncmp(abs, l->focus, n) == 0 && (abs[n] == '\0' || abs[n] == '/'));
	free(abs);
	return under;
}

static bool locate_code_under(locate_t *l, uint32_t code_id)
{
	const db_pycode_t *c = db_pycode_find(l->db, code_id);
	if (!c)
		return false;
	size_t k = (size_t)(c - l->db->pycode);
	if (l->code_under[k] < 0)
		l->code_under[k] = locate_under(l, c->filename);
	return l->code_under[k] == 1;
}

locate_t *locate_new(const db_t *db, const char *focus)
{
	locate_t *l = calloc(1, sizeof *l);
	uint32_t n = db->n_nodes ? db->n_nodes : 1;
	l->db = db;
	l->ht_mask = 1023;
	l->ht = calloc(l->ht_mask + 1, sizeof *l->ht);
	l->py = calloc(n, sizeof *l->py);
	l->focus_py = calloc(n, sizeof *l->focus_py);
	l->pyloc = malloc(n * sizeof *l->pyloc);
	l->nat = malloc(n * sizeof *l->nat);
	l->fb = malloc(n * sizeof *l->fb);
	l->inner = malloc(n * sizeof *l->inner);
	l->nat_done = calloc(n, 1);
	l->result = malloc(n * sizeof *l->result);
	l->code_under = malloc(db->n_pycode + 1);
	if (!l->ht || !l->py || !l->focus_py || !l->pyloc || !l->nat || !l->fb || !l->inner ||
	    !l->nat_done || !l->result || !l->code_under || addrmap_init(&l->ipcache, 1024)) {
		locate_free(l);
		return NULL;
	}
	memset(l->code_under, -1, db->n_pycode + 1);
	for (uint32_t i = 0; i < n; i++)
		l->pyloc[i] = l->result[i] = LOC_NONE;
	if (focus)
		l->focus = locate_abspath(focus, NULL);

	for (uint32_t i = 1; i < db->n_nodes; i++) {
		const db_node_t *nd = &db->nodes[i];
		if (!nd->present)
			continue;
		uint32_t p = nd->parent;
		if (mp_frame_is_python(nd->frame)) {
			l->py[i] = i;
			l->focus_py[i] = l->focus && locate_code_under(l, mp_frame_code(nd->frame))
						 ? i
						 : l->focus_py[p];
			l->focus_matched |= l->focus_py[i] == i;
		} else {
			l->py[i] = l->py[p];
			l->focus_py[i] = l->focus_py[p];
		}
	}
	return l;
}

void locate_free(locate_t *l)
{
	if (!l)
		return;
	for (uint32_t i = 0; i < l->n_locs; i++) {
		free((char *)l->locs[i].file);
		free((char *)l->locs[i].function);
	}
	free(l->locs);
	free(l->ht);
	free(l->py);
	free(l->focus_py);
	free(l->pyloc);
	free(l->nat);
	free(l->fb);
	free(l->inner);
	free(l->nat_done);
	free(l->result);
	free(l->code_under);
	free(l->chain);
	free(l->focus);
	addrmap_free(&l->ipcache);
	free(l->ipinfo);
	symbolize_free(l->sym);
	free(l);
}

static uint32_t locate_python(locate_t *l, uint32_t node)
{
	if (l->pyloc[node] != LOC_NONE)
		return l->pyloc[node];
	uint64_t f = l->db->nodes[node].frame;
	uint32_t code_id = mp_frame_code(f);
	const db_pycode_t *c = db_pycode_find(l->db, code_id);
	uint32_t id;
	if (!c) {
		char name[64];
		snprintf(name, sizeof name, "<code %" PRIu32 ">", code_id);
		id = locate_intern(l, "<unknown>", 0, name);
	} else {
		int line = pyline_addr2line(c->linetable, c->linetable_len, c->firstlineno,
					    mp_frame_lasti(f));
		id = locate_intern(l, c->filename, line > 0 ? line : 0,
				   c->qualname[0] ? c->qualname : c->name);
	}
	return l->pyloc[node] = id;
}

/* The C++ standard library's headers (/usr/include/c++/12/bits/new_allocator.h): their
 * templates are compiled into the program, but the line is the one that used them. */
static bool locate_std_header(const char *file)
{
	return file && strstr(file, "/include/c++/") != NULL;
}

/* The allocator plumbing never answers "who allocated". */
static bool locate_excluded(const char *module)
{
	static const char *const prefixes[] = {
		"libc.so", "ld-linux", "libmemprof.so", "libjemalloc", "libstdc++", "libgcc_s",
	};
	if (!module)
		return false;
	const char *base = strrchr(module, '/');
	base = base ? base + 1 : module;
	for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
		if (strncmp(base, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

static symbolizer_t *locate_symbolizer(locate_t *l)
{
	if (!l->sym) {
		l->sym = symbolize_new();
		for (size_t i = 0; i < l->db->n_modules; i++) {
			const db_module_t *m = &l->db->modules[i];
			/* a relative name (files before memprof recorded them absolute): from the
			 * program's working directory */
			char abs[PATH_MAX];
			const char *path = m->path;
			if (path && *path && path[0] != '/' && l->db->cwd &&
			    (size_t)snprintf(abs, sizeof abs, "%s/%s", l->db->cwd, path) < sizeof abs)
				path = paths_normalize(abs);
			symbolize_add_module_gen(l->sym, path, m->build_id, m->base, m->lo, m->hi, m->gen);
		}
	}
	return l->sym;
}

/* function + module form, for frames without source lines. */
static uint32_t locate_module_loc(locate_t *l, const sym_frame_t *fr, uint64_t frame)
{
	char hex[40];
	const char *fn = fr->function;
	if (!fn) {
		snprintf(hex, sizeof hex, "0x%" PRIx64, fr->module ? fr->offset : mp_frame_native_ip(frame));
		fn = hex;
	}
	return locate_intern(l, fr->module ? fr->module : "??", 0, fn);
}

/* A native frame (ip and module generation). */
static void locate_ip(locate_t *l, uint64_t ip, uint32_t *nat, uint32_t *fb, uint32_t *inner)
{
	addrmap_entry_t *e = addrmap_get(&l->ipcache, ip);
	if (e) {
		const locate_ipinfo_t *info = &l->ipinfo[e->a];
		*nat = info->nat;
		*fb = info->fb;
		*inner = info->inner;
		return;
	}
	/* Without a module table nothing can be resolved: skip the symbolizer. */
	static const sym_frame_t unknown;
	const sym_frame_t *frames = &unknown;
	int n = l->db->n_modules ? symbolize_ip(locate_symbolizer(l), ip, &frames) : 1;
	*nat = *fb = *inner = LOC_NONE;
	for (int k = 0; k < n; k++) {
		const sym_frame_t *fr = &frames[k];
		bool src = fr->file && fr->line > 0;
		bool excl = locate_excluded(fr->module) || locate_std_header(fr->file);
		if (k == 0)
			*inner = src ? locate_intern(l, fr->file, fr->line, fr->function ? fr->function : "??")
				     : locate_module_loc(l, fr, ip);
		if (!excl && src && *nat == LOC_NONE)
			*nat = locate_intern(l, fr->file, fr->line, fr->function ? fr->function : "??");
		if (!excl && *fb == LOC_NONE)
			*fb = locate_module_loc(l, fr, ip);
	}
	if (*inner == LOC_NONE) {
		char hex[40];
		snprintf(hex, sizeof hex, "0x%" PRIx64, mp_frame_native_ip(ip));
		*inner = locate_intern(l, "??", 0, hex);
	}
	if (l->n_ipinfo == l->cap_ipinfo) {
		l->cap_ipinfo = l->cap_ipinfo ? 2 * l->cap_ipinfo : 1024;
		l->ipinfo = realloc(l->ipinfo, l->cap_ipinfo * sizeof *l->ipinfo);
		if (!l->ipinfo)
			abort();
	}
	l->ipinfo[l->n_ipinfo] = (locate_ipinfo_t){*nat, *fb, *inner};
	if (addrmap_put(&l->ipcache, ip, l->n_ipinfo, 0, NULL) < 0)
		abort();
	l->n_ipinfo++;
}

/* Fills nat/fb/inner for node and every not yet done ancestor, root side first. */
static void locate_native(locate_t *l, uint32_t node)
{
	const db_t *db = l->db;
	size_t depth = 0;
	for (uint32_t m = node; m != 0 && db->nodes[m].present && !l->nat_done[m];
	     m = db->nodes[m].parent) {
		if (depth == l->chain_cap) {
			l->chain_cap = l->chain_cap ? 2 * l->chain_cap : 256;
			l->chain = realloc(l->chain, l->chain_cap * sizeof *l->chain);
			if (!l->chain)
				abort();
		}
		l->chain[depth++] = m;
	}
	while (depth-- > 0) {
		uint32_t m = l->chain[depth];
		uint32_t p = db->nodes[m].parent;
		bool pdone = p != 0 && db->nodes[p].present && l->nat_done[p];
		uint32_t pnat = pdone ? l->nat[p] : LOC_NONE, pfb = pdone ? l->fb[p] : LOC_NONE;
		uint64_t f = db->nodes[m].frame;
		uint32_t nat = LOC_NONE, fb = LOC_NONE, inner = LOC_NONE;
		if (!mp_frame_is_python(f) && !mp_frame_is_truncated(f))
			locate_ip(l, f, &nat, &fb, &inner);
		l->nat[m] = nat != LOC_NONE ? nat : pnat;
		l->fb[m] = fb != LOC_NONE ? fb : pfb;
		l->inner[m] = inner;
		l->nat_done[m] = 1;
	}
}

bool locate_focus_matched(const locate_t *l)
{
	return l->focus_matched;
}

uint32_t locate_focus_node(const locate_t *l, uint32_t node)
{
	return l->focus && node < l->db->n_nodes && l->focus_py[node] ? l->focus_py[node] : node;
}

uint32_t locate_stack(locate_t *l, uint32_t node)
{
	const db_t *db = l->db;
	if (node == 0)
		return locate_intern(l, "<no stack>", 0, "");
	if (node >= db->n_nodes || !db->nodes[node].present)
		return locate_intern(l, "<unknown stack>", 0, "");
	if (l->result[node] != LOC_NONE)
		return l->result[node];
	uint32_t p = l->focus ? l->focus_py[node] : 0;
	if (!p)
		p = l->py[node];
	uint32_t id;
	if (p) {
		id = locate_python(l, p);
	} else {
		locate_native(l, node);
		id = l->nat[node] != LOC_NONE ? l->nat[node]
		     : l->fb[node] != LOC_NONE ? l->fb[node]
		     : l->inner[node] != LOC_NONE ? l->inner[node]
						  : locate_intern(l, "<unknown>", 0, "");
	}
	return l->result[node] = id;
}

void locate_node_frames(locate_t *l, uint32_t node, void (*fn)(void *arg, const locate_frame_t *f),
			void *arg)
{
	const db_t *db = l->db;
	if (node == 0 || node >= db->n_nodes || !db->nodes[node].present)
		return;
	uint64_t f = db->nodes[node].frame;
	if (mp_frame_is_truncated(f)) {
		locate_frame_t fr = {LOCATE_TRUNCATED, NULL, 0, NULL, 0, 1};
		fn(arg, &fr);
		return;
	}
	if (mp_frame_is_python(f)) {
		const locate_loc_t *loc = locate_get(l, locate_python(l, node));
		locate_frame_t fr = {loc->function, loc->file, loc->line, NULL, 1, 0};
		fn(arg, &fr);
		return;
	}
	static const sym_frame_t unknown;
	const sym_frame_t *frames = &unknown;
	int n = db->n_modules ? symbolize_ip(locate_symbolizer(l), f, &frames) : 1;
	for (int k = 0; k < n; k++) {
		char hex[40];
		const char *name = frames[k].function;
		if (!name) { /* no symbol: the offset in its module, as addr2line takes it */
			snprintf(hex, sizeof hex, "0x%" PRIx64,
				 frames[k].module ? frames[k].offset : mp_frame_native_ip(f));
			name = hex;
		}
		char norm[PATH_MAX];
		locate_frame_t fr = {name, locate_display_path(norm, sizeof norm, frames[k].file),
				     frames[k].line, frames[k].module, 0, 0};
		fn(arg, &fr);
	}
}

void locate_walk(locate_t *l, uint32_t node, void (*fn)(void *arg, const locate_frame_t *f),
		 void *arg)
{
	const db_t *db = l->db;
	for (uint32_t m = node; m != 0 && m < db->n_nodes && db->nodes[m].present; m = db->nodes[m].parent)
		locate_node_frames(l, m, fn, arg);
}
