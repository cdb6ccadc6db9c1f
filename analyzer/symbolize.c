/* Offline symbolization of native return addresses through elfutils libdwfl.
 *
 * The profiled process recorded its loaded objects (path, build id, load bias, span of
 * the PT_LOAD segments, module generation); the analyzer replays them into libdwfl and
 * turns every return address into frames: function, file:line, and the chain of inlined
 * functions, which DWARF describes as nested DW_TAG_inlined_subroutine scopes whose
 * DW_AT_call_file / DW_AT_call_line give the line in the caller they were inlined into.
 *
 * - A file is only handed to libdwfl if its build id still matches the recorded one
 *   (a rebuilt or upgraded library would otherwise produce confident nonsense); a
 *   missing, unreadable or mismatching file degrades to module+offset frames.
 * - Separate debug info (/usr/lib/debug/.build-id/..., .gnu_debuglink) is found by the
 *   standard libdwfl callbacks; stripped objects fall back to .dynsym names.
 * - An object unloaded during the run may have been replaced by another at the same
 *   address, so modules can overlap; a frame's generation (memprof/format.h) picks the
 *   one that held the address then. libdwfl refuses overlapping modules in one Dwfl, so
 *   each module gets its own Dwfl, made at the first lookup that lands in it (only the
 *   modules that appear in stacks are ever opened; rows of the same file at the same
 *   place share one).
 * - Every ip is resolved once per module: a hash map from (ip, module) to its frame
 *   array (so add all modules before the first lookup: an ip already answered keeps its
 *   answer).
 *   Strings are interned in a set owned by the symbolizer, so frames stay valid (and
 *   small) until symbolize_free whatever libdw does with its own memory.
 * - C++ names are demangled with __cxa_demangle when libstdc++ can be found at run
 *   time (dlsym/dlopen); the analyzer itself does not link against it.
 */
#include "symbolize.h"
#include "paths.h"
#include "scopes.h"

#include "memprof/format.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct symbolize_module {
	char *path;     /* interned */
	uint64_t base;  /* load bias */
	uint64_t lo, hi;
	uint64_t gen;   /* module generation when first seen */
	uint32_t order; /* 1 + index in the order added: the cache key, and later wins ties */
	bool usable;    /* the file on disk is this object: give it to libdwfl */
	bool reported;  /* dwfl was tried */
	bool owns_dwfl; /* else shared with a module of the same file and place */
	Dwfl *dwfl;     /* this module alone */
} symbolize_module_t;

typedef struct symbolize_entry {
	uint64_t ip;
	uint32_t module;    /* order of the module, 0 = none */
	int count;          /* 0: empty slot */
	sym_frame_t *frames;
} symbolize_entry_t;

struct symbolizer {
	bool sorted;

	symbolize_module_t *modules; /* sorted by lo, then order, before lookups */
	uint64_t *max_hi;            /* max_hi[i]: largest hi of modules[0..i] */
	size_t n_modules, cap_modules;

	symbolize_entry_t *cache; /* open addressing, power-of-two size */
	size_t cache_size, cache_used;

	char **strings;     /* interned strings, open addressing */
	size_t strings_size, strings_used;

	scopes_t *scopes; /* the function scopes of the units looked at */
};

typedef char *(*symbolize_demangle_fn)(const char *, char *, size_t *, int *);

static char *symbolize_debuginfo_path; /* NULL: libdwfl's default search path */

static const Dwfl_Callbacks symbolize_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &symbolize_debuginfo_path,
};

/* Frame given when even the cache cannot be allocated. */
static const sym_frame_t symbolize_unknown_frame;

static uint64_t symbolize_hash_ip(uint64_t ip, uint32_t module)
{
	ip ^= (uint64_t)module << 48 ^ (uint64_t)module;
	ip ^= ip >> 33;
	ip *= 0xff51afd7ed558ccdull;
	ip ^= ip >> 33;
	return ip;
}

static uint64_t symbolize_hash_str(const char *str)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *str; str++)
		h = (h ^ (unsigned char)*str) * 0x100000001b3ull;
	return h;
}

/* Returns the symbolizer's copy of str (NULL stays NULL; NULL also on OOM). */
static const char *symbolize_intern(symbolizer_t *s, const char *str)
{
	if (!str)
		return NULL;
	if ((s->strings_used + 1) * 2 > s->strings_size) {
		size_t size = s->strings_size ? s->strings_size * 2 : 1024;
		char **table = calloc(size, sizeof(*table));
		if (!table)
			return NULL;
		for (size_t i = 0; i < s->strings_size; i++) {
			if (!s->strings[i])
				continue;
			size_t j = symbolize_hash_str(s->strings[i]) & (size - 1);
			while (table[j])
				j = (j + 1) & (size - 1);
			table[j] = s->strings[i];
		}
		free(s->strings);
		s->strings = table;
		s->strings_size = size;
	}
	size_t i = symbolize_hash_str(str) & (s->strings_size - 1);
	for (; s->strings[i]; i = (i + 1) & (s->strings_size - 1))
		if (strcmp(s->strings[i], str) == 0)
			return s->strings[i];
	s->strings[i] = strdup(str);
	if (s->strings[i])
		s->strings_used++;
	return s->strings[i];
}

static symbolize_demangle_fn symbolize_demangler(void)
{
	static bool looked;
	static symbolize_demangle_fn fn;

	if (!looked) {
		looked = true;
		void *sym = dlsym(RTLD_DEFAULT, "__cxa_demangle");
		if (!sym) {
			void *lib = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
			if (lib)
				sym = dlsym(lib, "__cxa_demangle");
		}
		/* POSIX guarantees data and function pointers convert for dlsym. */
		memcpy(&fn, &sym, sizeof(fn));
	}
	return fn;
}

/* Interned demangled form of a linkage name, or the name itself. */
static const char *symbolize_function_name(symbolizer_t *s, const char *name)
{
	if (!name)
		return NULL;
	if (name[0] == '_' && name[1] == 'Z') {
		symbolize_demangle_fn demangle = symbolize_demangler();
		int status = -1;
		char *plain = demangle ? demangle(name, NULL, NULL, &status) : NULL;
		if (plain && status == 0) {
			const char *interned = symbolize_intern(s, plain);
			free(plain);
			return interned;
		}
		free(plain);
	}
	return symbolize_intern(s, name);
}

/* Whether addr lies in a hole of its unit's address ranges: libdw still answers a row of
 * the unit's line table for it (the last before it), another function's line: _start of
 * a g++ -O2 program, in a hole of a unit of libstdc++ templates, read basic_string.h:795.
 * No line is better. (A unit with no ranges recorded: not a hole.) */
static bool symbolize_in_unit_hole(Dwfl_Module *mod, Dwarf_Addr addr)
{
	Dwarf_Addr bias, base, start, end;
	Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, &bias);
	if (!cu)
		return false;
	Dwarf_Addr a = addr - bias;
	bool any = false;
	ptrdiff_t off = 0;
	while ((off = dwarf_ranges(cu, off, &base, &start, &end)) > 0) {
		any = true;
		if (a >= start && a < end)
			return false;
	}
	return any;
}

/* Hex build id of an ELF file into out (2 * 64 + 1 bytes); false if none/unreadable. */
static bool symbolize_file_build_id(const char *path, char *out, bool *readable)
{
	static const char hex[] = "0123456789abcdef";
	const void *bits;
	bool found = false;
	int fd = paths_open_regular(path);

	*readable = false;
	if (fd < 0)
		return false;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_kind(elf) == ELF_K_ELF) {
		*readable = true;
		ssize_t len = dwelf_elf_gnu_build_id(elf, &bits);
		if (len > 0 && len <= 64) {
			for (ssize_t i = 0; i < len; i++) {
				out[2 * i] = hex[((const uint8_t *)bits)[i] >> 4];
				out[2 * i + 1] = hex[((const uint8_t *)bits)[i] & 15];
			}
			out[2 * len] = '\0';
			found = true;
		}
	}
	elf_end(elf);
	close(fd);
	return found;
}

/* Whether the file at path is still the object that was recorded. */
static bool symbolize_file_matches(const char *path, const char *build_id)
{
	char actual[129];
	bool readable;
	bool has = symbolize_file_build_id(path, actual, &readable);

	if (!readable)
		return false;
	if (!has || !build_id || !*build_id)
		return true; /* nothing to compare: trust the path */
	return strcasecmp(actual, build_id) == 0;
}

symbolizer_t *symbolize_new(void)
{
	symbolizer_t *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->scopes = scopes_new();
	if (!s->scopes) {
		free(s);
		return NULL;
	}
	elf_version(EV_CURRENT);
	return s;
}

void symbolize_add_module_gen(symbolizer_t *s, const char *path, const char *build_id, uint64_t base,
			      uint64_t lo, uint64_t hi, uint64_t gen)
{
	if (!s || hi <= lo || s->n_modules >= UINT32_MAX - 1)
		return;
	if (s->n_modules == s->cap_modules) {
		size_t cap = s->cap_modules ? s->cap_modules * 2 : 64;
		symbolize_module_t *m = realloc(s->modules, cap * sizeof(*m));
		uint64_t *max_hi = realloc(s->max_hi, cap * sizeof(*max_hi));
		if (m)
			s->modules = m;
		if (max_hi)
			s->max_hi = max_hi;
		if (!m || !max_hi)
			return;
		s->cap_modules = cap;
	}
	symbolize_module_t *m = &s->modules[s->n_modules];
	memset(m, 0, sizeof(*m));
	m->path = (char *)symbolize_intern(s, path && *path ? path : NULL);
	m->base = base;
	m->lo = lo;
	m->hi = hi;
	m->gen = gen;
	m->order = (uint32_t)s->n_modules + 1;
	m->usable = m->path && m->path[0] == '/' && symbolize_file_matches(m->path, build_id);
	s->n_modules++;
	s->sorted = false;
}

void symbolize_add_module(symbolizer_t *s, const char *path, const char *build_id, uint64_t base,
			  uint64_t lo, uint64_t hi)
{
	symbolize_add_module_gen(s, path, build_id, base, lo, hi, 0);
}

static int symbolize_module_cmp(const void *a, const void *b)
{
	const symbolize_module_t *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Sorts the modules for lookups. */
static void symbolize_prepare(symbolizer_t *s)
{
	if (s->sorted)
		return;
	/* qsort's pointer must be valid even for 0 elements: none is allocated yet. */
	if (s->n_modules > 1)
		qsort(s->modules, s->n_modules, sizeof(*s->modules), symbolize_module_cmp);
	for (size_t i = 0; i < s->n_modules; i++)
		s->max_hi[i] = i && s->max_hi[i - 1] > s->modules[i].hi ? s->max_hi[i - 1]
									 : s->modules[i].hi;
	s->sorted = true;
}

/* The module whose [lo, hi) contains addr and that was first seen latest at or before
 * generation gen (15 bits, compared modulo 2^15; of equal ones the one added last),
 * NULL if none contains addr. */
static symbolize_module_t *symbolize_find_module(symbolizer_t *s, uint64_t addr, uint32_t gen)
{
	size_t lo = 0, hi = s->n_modules;
	symbolize_module_t *best = NULL;
	uint32_t best_distance = 0;

	while (lo < hi) { /* first module with lo > addr */
		size_t mid = lo + (hi - lo) / 2;
		if (s->modules[mid].lo <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Overlaps are unusual (a reused address range); scan back while a module that
	 * starts lower may still reach addr. */
	for (size_t i = lo; i-- > 0 && s->max_hi[i] > addr;) {
		symbolize_module_t *m = &s->modules[i];
		if (addr >= m->hi)
			continue;
		uint32_t d = mp_frame_gen_distance(gen, m->gen);
		if (!best || d < best_distance ||
		    (d == best_distance &&
		     (m->gen > best->gen || (m->gen == best->gen && m->order > best->order)))) {
			best = m;
			best_distance = d;
		}
	}
	return best;
}

/* The module's own Dwfl, made at its first use; NULL if the file cannot be used. */
static Dwfl *symbolize_module_dwfl(symbolizer_t *s, symbolize_module_t *m)
{
	if (!m->usable)
		return NULL;
	if (m->reported)
		return m->dwfl;
	m->reported = true;
	/* Another row of the same file at the same place (a library loaded again where it
	 * was before) is the same object: share its Dwfl. */
	for (size_t i = 0; i < s->n_modules; i++) {
		const symbolize_module_t *o = &s->modules[i];
		if (o != m && o->dwfl && o->path == m->path && o->base == m->base && o->lo == m->lo &&
		    o->hi == m->hi) {
			m->dwfl = o->dwfl;
			return m->dwfl;
		}
	}
	Dwfl *dwfl = dwfl_begin(&symbolize_callbacks);
	if (dwfl) {
		dwfl_report_begin(dwfl);
		/* base is the load bias, i.e. relative to p_vaddr: add_p_vaddr = true. For the
		 * usual objects whose first PT_LOAD is at vaddr 0 both forms are the same. */
		bool ok = dwfl_report_elf(dwfl, m->path, m->path, -1, m->base, true) != NULL;
		dwfl_report_end(dwfl, NULL, NULL);
		if (!ok) {
			dwfl_end(dwfl);
			dwfl = NULL;
		}
	}
	if (!dwfl)
		m->usable = false;
	m->dwfl = dwfl;
	m->owns_dwfl = dwfl != NULL;
	return dwfl;
}

/* A function DIE's name: the demangled linkage name for C++ (qualified, with the
 * parameter types), DW_AT_name otherwise. A C linkage name is only an asm label such
 * as glibc's __GI_qsort, which is not what the user called. */
static const char *symbolize_die_name(symbolizer_t *s, Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));

	if (!name)
		name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
	if (!name || name[0] != '_' || name[1] != 'Z')
		name = dwarf_diename(die);
	return symbolize_function_name(s, name);
}

/* Interned absolute form of a source path: relative ones are relative to the
 * compilation directory, which makes them usable outside the build tree. */
static const char *symbolize_source_path(symbolizer_t *s, const char *comp_dir, const char *file)
{
	if (!file || file[0] == '/' || !comp_dir || comp_dir[0] != '/')
		return symbolize_intern(s, file);
	while (file[0] == '.' && file[1] == '/')
		file += 2;
	size_t dlen = strlen(comp_dir), flen = strlen(file);
	while (dlen > 1 && comp_dir[dlen - 1] == '/')
		dlen--;
	char *joined = malloc(dlen + flen + 2);
	if (!joined)
		return symbolize_intern(s, file);
	memcpy(joined, comp_dir, dlen);
	joined[dlen] = '/';
	memcpy(joined + dlen + 1, file, flen + 1);
	const char *interned = symbolize_intern(s, joined);
	free(joined);
	return interned;
}

typedef struct symbolize_frames {
	sym_frame_t *v;
	int n, cap;
} symbolize_frames_t;

static bool symbolize_push(symbolize_frames_t *f, sym_frame_t frame)
{
	if (f->n == f->cap) {
		int cap = f->cap ? f->cap * 2 : 4;
		sym_frame_t *v = realloc(f->v, (size_t)cap * sizeof(*v));
		if (!v)
			return false;
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n++] = frame;
	return true;
}

/* Adds the inline chain at pc (in module coordinates: addr - bias) to f, starting
 * with the innermost function at file:line. Returns false if DWARF had no function. */
static bool symbolize_inlines(symbolizer_t *s, Dwarf_Die *cudie, Dwarf_Addr pc, sym_frame_t frame,
			      symbolize_frames_t *f)
{
	Dwarf_Die *scopes;
	int n = scopes_at(s->scopes, cudie, pc, &scopes);
	int before = f->n;
	for (int i = 0; i < n; i++) {
		Dwarf_Die *die = &scopes[i];
		frame.function = symbolize_die_name(s, die);
		if (!symbolize_push(f, frame))
			break;
		if (dwarf_tag(die) != DW_TAG_inlined_subroutine)
			break;
		/* The caller's frame is at the call site of this inline. */
		Dwarf_Attribute attr;
		Dwarf_Word value;
		Dwarf_Die cu;
		Dwarf_Files *files;
		size_t nfiles;
		frame.file = NULL;
		frame.line = 0;
		if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &value) == 0 &&
		    dwarf_diecu(die, &cu, NULL, NULL) &&
		    dwarf_getsrcfiles(&cu, &files, &nfiles) == 0 && value < nfiles)
			frame.file = symbolize_source_path(
				s, dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &attr)),
				dwarf_filesrc(files, value, NULL, NULL));
		if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &value) == 0)
			frame.line = (int)value;
	}
	return f->n > before;
}

/* The name of the symbol holding addr. Asked only where DWARF has no name: libdwfl
 * searches the symbol table linearly. */
static const char *symbolize_symbol_name(symbolizer_t *s, Dwfl_Module *mod, Dwarf_Addr addr)
{
	GElf_Off offset;
	GElf_Sym sym;
	return symbolize_function_name(s, dwfl_module_addrinfo(mod, addr, &offset, &sym, NULL, NULL, NULL));
}

/* Computes the frames of ip in module m (NULL: none) into f (at least one frame on
 * success). */
static void symbolize_resolve(symbolizer_t *s, uint64_t ip, symbolize_module_t *m,
			      symbolize_frames_t *f)
{
	uint64_t addr = ip - 1; /* inside the call instruction, not after it */
	sym_frame_t frame = {0};
	Dwfl_Module *mod = NULL;

	if (m) {
		frame.module = m->path;
		frame.offset = ip - m->base;
		Dwfl *dwfl = symbolize_module_dwfl(s, m);
		if (dwfl)
			mod = dwfl_addrmodule(dwfl, addr);
	}
	if (!mod) {
		symbolize_push(f, frame);
		return;
	}

	Dwfl_Line *line = dwfl_module_getsrc(mod, addr);
	if (line && symbolize_in_unit_hole(mod, addr))
		line = NULL;
	if (line) {
		int lineno = 0;
		const char *file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
		frame.file = symbolize_source_path(s, dwfl_line_comp_dir(line), file);
		frame.line = file ? lineno : 0;
	}

	Dwarf_Addr bias;
	Dwarf_Die *cudie = dwfl_module_addrdie(mod, addr, &bias);
	if (cudie && symbolize_inlines(s, cudie, addr - bias, frame, f)) {
		/* The outermost function: DWARF may lack a name (artificial code). */
		if (!f->v[f->n - 1].function)
			f->v[f->n - 1].function = symbolize_symbol_name(s, mod, addr);
		return;
	}
	frame.function = symbolize_symbol_name(s, mod, addr);
	symbolize_push(f, frame);
}

static bool symbolize_cache_grow(symbolizer_t *s)
{
	size_t size = s->cache_size ? s->cache_size * 2 : 4096;
	symbolize_entry_t *table = calloc(size, sizeof(*table));

	if (!table)
		return false;
	for (size_t i = 0; i < s->cache_size; i++) {
		if (!s->cache[i].count)
			continue;
		size_t j = symbolize_hash_ip(s->cache[i].ip, s->cache[i].module) & (size - 1);
		while (table[j].count)
			j = (j + 1) & (size - 1);
		table[j] = s->cache[i];
	}
	free(s->cache);
	s->cache = table;
	s->cache_size = size;
	return true;
}

int symbolize_ip(symbolizer_t *s, uint64_t frame, const sym_frame_t **out)
{
	*out = &symbolize_unknown_frame;
	if (!s)
		return 1;
	symbolize_prepare(s);
	if ((s->cache_used + 1) * 4 > s->cache_size * 3 && !symbolize_cache_grow(s))
		return 1;

	uint64_t ip = mp_frame_native_ip(frame);
	symbolize_module_t *m = symbolize_find_module(s, ip - 1, mp_frame_native_gen(frame));
	uint32_t key = m ? m->order : 0;
	size_t i = symbolize_hash_ip(ip, key) & (s->cache_size - 1);
	for (; s->cache[i].count; i = (i + 1) & (s->cache_size - 1)) {
		if (s->cache[i].ip == ip && s->cache[i].module == key) {
			*out = s->cache[i].frames;
			return s->cache[i].count;
		}
	}

	symbolize_frames_t f = {0};
	symbolize_resolve(s, ip, m, &f);
	if (f.n == 0) {
		free(f.v);
		return 1;
	}
	s->cache[i].ip = ip;
	s->cache[i].module = key;
	s->cache[i].count = f.n;
	s->cache[i].frames = f.v;
	s->cache_used++;
	*out = f.v;
	return f.n;
}

void symbolize_free(symbolizer_t *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_modules; i++)
		if (s->modules[i].owns_dwfl)
			dwfl_end(s->modules[i].dwfl);
	for (size_t i = 0; i < s->cache_size; i++)
		free(s->cache[i].frames);
	free(s->cache);
	for (size_t i = 0; i < s->strings_size; i++)
		free(s->strings[i]);
	free(s->strings);
	free(s->modules);
	free(s->max_hi);
	scopes_free(s->scopes);
	free(s);
}
