/* Checks analyzer/symbolize.c on this very process.
 *
 * The test registers its own loaded objects the way the capture records them
 * (dl_iterate_phdr: load bias, PT_LOAD span, NT_GNU_BUILD_ID as lowercase hex), then
 * symbolizes return addresses it captured itself from functions at known lines: a
 * plain call, a call inside an always_inline function (the inline chain must name the
 * inlined function at its line, then the caller at the call site), a return address
 * inside libc (qsort calling our comparator), libc's qsort entry, an address in no
 * module, a module whose build id does not match and a stripped copy of libc that only
 * has .dynsym; and modules of different generations overlapping in address (an object
 * loaded where another was unloaded): each frame resolves in the module of its own
 * generation; inlines nested in inlines (after a sibling inline, in a lexical block); the
 * same binary with its debug info compressed by dwz (partial units); debug info whose
 * partial unit imports itself (test_symbolize_cyclic.S); an inline across units by
 * link-time optimization (test_symbolize_lto_*.c). Built with -g -O0
 * so the lines are where the source says.
 */
#define _GNU_SOURCE
#include "symbolize.h"
#include "memprof/format.h"

#include <dlfcn.h>
#include <elf.h>
#include <inttypes.h>
#include <link.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long test_symbolize_checks, test_symbolize_failures;

#define expect_int_eq(got, want, what)                                                      \
	do {                                                                                \
		long long got_ = (long long)(got), want_ = (long long)(want);               \
		test_symbolize_checks++;                                                    \
		if (got_ != want_) {                                                        \
			test_symbolize_failures++;                                          \
			fprintf(stderr, "%s:%d: %s: got %lld, want %lld\n", __FILE__,       \
				__LINE__, what, got_, want_);                               \
		}                                                                           \
	} while (0)

#define expect_str_eq(got, want, what)                                                      \
	do {                                                                                \
		const char *got_ = (got), *want_ = (want);                                  \
		test_symbolize_checks++;                                                    \
		if (!(got_ == want_ || (got_ && want_ && strcmp(got_, want_) == 0))) {      \
			test_symbolize_failures++;                                          \
			fprintf(stderr, "%s:%d: %s: got \"%s\", want \"%s\"\n", __FILE__,   \
				__LINE__, what, got_ ? got_ : "(null)",                     \
				want_ ? want_ : "(null)");                                  \
		}                                                                           \
	} while (0)

#define expect_true(cond, what) expect_int_eq(!!(cond), 1, what)

typedef struct test_symbolize_module {
	char path[4096];
	char build_id[129];
	uint64_t base, lo, hi;
} test_symbolize_module_t;

static test_symbolize_module_t test_symbolize_modules[256];
static int test_symbolize_n_modules;

static const char *test_symbolize_basename(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	return slash ? slash + 1 : path;
}

static void test_symbolize_build_id(const struct dl_phdr_info *info, const ElfW(Phdr) *ph,
				    char *out)
{
	const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
	const char *end = p + ph->p_memsz;
	size_t align = ph->p_align == 8 ? 8 : 4;

	while (p + sizeof(ElfW(Nhdr)) <= end) {
		const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
		const char *name = p + sizeof(*n);
		const unsigned char *desc =
			(const unsigned char *)name + ((n->n_namesz + align - 1) & ~(align - 1));
		if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
		    memcmp(name, "GNU", 4) == 0 && n->n_descsz <= 64) {
			for (unsigned i = 0; i < n->n_descsz; i++)
				sprintf(out + 2 * i, "%02x", desc[i]);
			return;
		}
		p = (const char *)desc + ((n->n_descsz + align - 1) & ~(align - 1));
	}
}

static int test_symbolize_phdr(struct dl_phdr_info *info, size_t size, void *data)
{
	test_symbolize_module_t *m;

	if (test_symbolize_n_modules == 256)
		return 1;
	m = &test_symbolize_modules[test_symbolize_n_modules];
	memset(m, 0, sizeof(*m));
	if (info->dlpi_name && info->dlpi_name[0]) {
		snprintf(m->path, sizeof(m->path), "%s", info->dlpi_name);
	} else {
		/* The main program has an empty name. */
		ssize_t n = readlink("/proc/self/exe", m->path, sizeof(m->path) - 1);
		m->path[n > 0 ? n : 0] = '\0';
	}
	m->base = info->dlpi_addr;
	m->lo = UINT64_MAX;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD) {
			uint64_t lo = info->dlpi_addr + ph->p_vaddr;
			if (lo < m->lo)
				m->lo = lo;
			if (lo + ph->p_memsz > m->hi)
				m->hi = lo + ph->p_memsz;
		} else if (ph->p_type == PT_NOTE && !m->build_id[0]) {
			test_symbolize_build_id(info, ph, m->build_id);
		}
	}
	if (m->hi > m->lo)
		test_symbolize_n_modules++;
	return 0;
}

static const test_symbolize_module_t *test_symbolize_module_of(uint64_t addr)
{
	for (int i = 0; i < test_symbolize_n_modules; i++)
		if (addr >= test_symbolize_modules[i].lo && addr < test_symbolize_modules[i].hi)
			return &test_symbolize_modules[i];
	return NULL;
}

/* ---- code at known lines --------------------------------------------------------- */

__attribute__((noinline)) static uint64_t test_symbolize_capture(void)
{
	return (uint64_t)(uintptr_t)__builtin_return_address(0);
}

__attribute__((noinline)) static uint64_t test_symbolize_leaf(int *line)
{
	uint64_t ra = test_symbolize_capture(); *line = __LINE__;
	return ra;
}

static inline __attribute__((always_inline)) uint64_t test_symbolize_inlined(int *line)
{
	uint64_t ra = test_symbolize_capture(); *line = __LINE__;
	return ra;
}

__attribute__((noinline)) static uint64_t test_symbolize_outer(int *inlined_line, int *call_line)
{
	uint64_t ra = test_symbolize_inlined(inlined_line); *call_line = __LINE__;
	return ra;
}

/* Inlines nested in inlines, after a sibling inline and inside a lexical block: the
 * chain is the innermost inline at its line, then each caller at its call site. */
static inline __attribute__((always_inline)) int test_symbolize_sibling(int *v)
{
	int k = *v * 3;
	*v = k + 1;
	return k;
}

static inline __attribute__((always_inline)) uint64_t test_symbolize_mid(int *inlined_line, int *mid_line)
{
	uint64_t ra = test_symbolize_inlined(inlined_line); *mid_line = __LINE__;
	return ra;
}

__attribute__((noinline)) static uint64_t test_symbolize_nest(int *lines)
{
	int v = lines[0];
	v += test_symbolize_sibling(&v);
	uint64_t ra = 0;
	if (v >= 0) {
		volatile int block_local = v;
		ra = test_symbolize_mid(&lines[0], &lines[1]) + (uint64_t)(block_local & 0); lines[2] = __LINE__;
	}
	return ra;
}

static uint64_t test_symbolize_libc_ra;

/* test_symbolize_cyclic.S: debug info whose partial unit imports itself */
void test_symbolize_cyclic(void);
/* libtest_symbolize_lto.so: an inline across units by link-time optimization */
uint64_t test_symbolize_lto_outer(int *inner_line, int *call_line);

static int test_symbolize_compare(const void *a, const void *b)
{
	if (!test_symbolize_libc_ra)
		test_symbolize_libc_ra = (uint64_t)(uintptr_t)__builtin_return_address(0);
	return *(const int *)a - *(const int *)b;
}

typedef void (*test_symbolize_qsort_fn)(void *, size_t, size_t,
				       int (*)(const void *, const void *));

/* libc's own qsort: under ASan, &qsort is the sanitizer's interceptor. */
static test_symbolize_qsort_fn test_symbolize_libc_qsort(void)
{
	void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	void *sym = libc ? dlsym(libc, "qsort") : NULL;
	test_symbolize_qsort_fn fn = qsort;

	if (sym)
		memcpy(&fn, &sym, sizeof(fn));
	return fn;
}

/* ---- checks ---------------------------------------------------------------------- */

static void test_symbolize_print(const char *what, const sym_frame_t *f, int n)
{
	printf("%s:\n", what);
	for (int i = 0; i < n; i++)
		printf("  #%d %s at %s:%d in %s+0x%" PRIx64 "\n", i,
		       f[i].function ? f[i].function : "??", f[i].file ? f[i].file : "??",
		       f[i].line, f[i].module ? f[i].module : "??", f[i].offset);
}

static symbolizer_t *test_symbolize_new_all(void)
{
	symbolizer_t *s = symbolize_new();

	for (int i = 0; i < test_symbolize_n_modules; i++) {
		const test_symbolize_module_t *m = &test_symbolize_modules[i];
		symbolize_add_module(s, m->path, m->build_id, m->base, m->lo, m->hi);
	}
	return s;
}

/* The chain of test_symbolize_nest's return address in s. */
static void test_symbolize_nested(symbolizer_t *s, const char *what)
{
	const sym_frame_t *f;
	int lines[3] = {0, 0, 0};
	uint64_t ra = test_symbolize_nest(lines);
	int n = symbolize_ip(s, ra, &f);
	test_symbolize_print(what, f, n);
	expect_int_eq(n, 3, "nested: chain length");
	static const char *const want[] = {"test_symbolize_inlined", "test_symbolize_mid", "test_symbolize_nest"};
	for (int i = 0; i < n && i < 3; i++) {
		expect_str_eq(f[i].function, want[i], "nested: function");
		expect_str_eq(test_symbolize_basename(f[i].file), "test_symbolize.c", "nested: file");
		expect_int_eq(f[i].line, lines[i], "nested: line");
	}
}

static void test_symbolize_own_code(symbolizer_t *s, const test_symbolize_module_t *self)
{
	const sym_frame_t *f, *again;
	int line, inlined_line, call_line;
	uint64_t ra = test_symbolize_leaf(&line);

	int n = symbolize_ip(s, ra, &f);
	test_symbolize_print("plain call", f, n);
	expect_int_eq(n, 1, "plain call frames");
	expect_str_eq(f[0].function, "test_symbolize_leaf", "plain call function");
	expect_str_eq(test_symbolize_basename(f[0].file), "test_symbolize.c", "plain call file");
	expect_int_eq(f[0].line, line, "plain call line");
	expect_str_eq(f[0].module, self->path, "plain call module");
	expect_int_eq(f[0].offset, ra - self->base, "plain call offset");
	expect_int_eq(symbolize_ip(s, ra, &again), n, "cached count");
	expect_true(again == f, "second lookup served from the cache");

	ra = test_symbolize_outer(&inlined_line, &call_line);
	n = symbolize_ip(s, ra, &f);
	test_symbolize_print("inlined call", f, n);
	expect_int_eq(n, 2, "inline chain length");
	if (n == 2) {
		expect_str_eq(f[0].function, "test_symbolize_inlined", "inlined function");
		expect_str_eq(test_symbolize_basename(f[0].file), "test_symbolize.c", "inlined file");
		expect_int_eq(f[0].line, inlined_line, "inlined line");
		expect_str_eq(f[1].function, "test_symbolize_outer", "caller of the inline");
		expect_str_eq(test_symbolize_basename(f[1].file), "test_symbolize.c", "call site file");
		expect_int_eq(f[1].line, call_line, "call site line");
		for (int i = 0; i < 2; i++) {
			expect_str_eq(f[i].module, self->path, "inline module");
			expect_int_eq(f[i].offset, ra - self->base, "inline offset");
		}
	}
	test_symbolize_nested(s, "nested inlines");
}

static void test_symbolize_libc(symbolizer_t *s)
{
	int values[] = {3, 1, 2};
	const sym_frame_t *f;

	test_symbolize_qsort_fn libc_qsort = test_symbolize_libc_qsort();

	libc_qsort(values, 3, sizeof(values[0]), test_symbolize_compare);
	const test_symbolize_module_t *libc = test_symbolize_module_of(test_symbolize_libc_ra);
	expect_true(libc && strncmp(test_symbolize_basename(libc->path), "libc.so", 7) == 0,
		    "comparator called from libc");
	int n = symbolize_ip(s, test_symbolize_libc_ra, &f);
	test_symbolize_print("inside qsort", f, n);
	expect_true(n >= 1, "libc frames");
	expect_true(f[n - 1].function && strstr(f[n - 1].function, "sort"),
		    "libc function named *sort*");
	expect_str_eq(f[0].module, libc ? libc->path : NULL, "libc module");

	/* The entry of qsort itself (the lookup is at ip - 1, so pass entry + 1). */
	uint64_t entry = (uint64_t)(uintptr_t)libc_qsort;
	n = symbolize_ip(s, entry + 1, &f);
	test_symbolize_print("qsort entry", f, n);
	expect_str_eq(f[n - 1].function, "qsort", "qsort entry function");
	expect_int_eq(f[0].offset, entry + 1 - (libc ? libc->base : 0), "qsort offset");
}

/* Debug info that imports a unit into itself is refused (as libdw refuses it): the name
 * comes from the symbol table, at once. */
static void test_symbolize_import_cycle(symbolizer_t *s)
{
	const sym_frame_t *f;
	int n = symbolize_ip(s, (uint64_t)(uintptr_t)&test_symbolize_cyclic + 1, &f);
	test_symbolize_print("import cycle", f, n);
	expect_int_eq(n, 1, "import cycle: one frame");
	expect_str_eq(f[0].function, "test_symbolize_cyclic", "import cycle: the symbol's name");
}

/* The inline chain of an inline whose abstract origin is in another unit (GCC -flto). */
static void test_symbolize_lto(symbolizer_t *s)
{
	const sym_frame_t *f;
	int inner_line = 0, call_line = 0;
	uint64_t ra = test_symbolize_lto_outer(&inner_line, &call_line);
	int n = symbolize_ip(s, ra, &f);
	test_symbolize_print("inline across units (LTO)", f, n);
	expect_int_eq(n, 2, "lto: chain length");
	if (n == 2) {
		expect_str_eq(f[0].function, "test_symbolize_lto_inner", "lto: inlined function");
		expect_str_eq(test_symbolize_basename(f[0].file), "test_symbolize_lto_a.c", "lto: inlined file");
		expect_int_eq(f[0].line, inner_line, "lto: inlined line");
		expect_str_eq(f[1].function, "test_symbolize_lto_outer", "lto: caller");
		expect_str_eq(test_symbolize_basename(f[1].file), "test_symbolize_lto_b.c", "lto: call site file");
		expect_int_eq(f[1].line, call_line, "lto: call site line");
	}
}

static void test_symbolize_no_module(symbolizer_t *s)
{
	const sym_frame_t *f;
	int n = symbolize_ip(s, 0x1000, &f);

	expect_int_eq(n, 1, "no module: one frame");
	expect_str_eq(f[0].function, NULL, "no module: function");
	expect_str_eq(f[0].file, NULL, "no module: file");
	expect_str_eq(f[0].module, NULL, "no module: module");
	expect_int_eq(f[0].line, 0, "no module: line");
	n = symbolize_ip(s, 0, &f);
	expect_int_eq(n, 1, "ip 0: one frame");
	expect_str_eq(f[0].module, NULL, "ip 0: module");
}

/* A rebuilt file (build id mismatch) or a missing one: module + offset only. */
static void test_symbolize_fallbacks(const test_symbolize_module_t *self)
{
	const sym_frame_t *f;
	int line;
	uint64_t ra = test_symbolize_leaf(&line);
	symbolizer_t *s = symbolize_new();

	symbolize_add_module(s, self->path, "00112233445566778899aabbccddeeff00112233", self->base,
			     self->lo, self->hi);
	int n = symbolize_ip(s, ra, &f);
	expect_int_eq(n, 1, "mismatch: one frame");
	expect_str_eq(f[0].function, NULL, "mismatch: no function");
	expect_str_eq(f[0].file, NULL, "mismatch: no file");
	expect_str_eq(f[0].module, self->path, "mismatch: module");
	expect_int_eq(f[0].offset, ra - self->base, "mismatch: offset");
	symbolize_free(s);

	s = symbolize_new();
	symbolize_add_module(s, "/nonexistent/libgone.so", self->build_id, self->base, self->lo,
			     self->hi);
	n = symbolize_ip(s, ra, &f);
	expect_int_eq(n, 1, "missing file: one frame");
	expect_str_eq(f[0].function, NULL, "missing file: no function");
	expect_str_eq(f[0].module, "/nonexistent/libgone.so", "missing file: module");
	expect_int_eq(f[0].offset, ra - self->base, "missing file: offset");
	symbolize_free(s);

	/* Without a build id to compare, the path is trusted. */
	s = symbolize_new();
	symbolize_add_module(s, self->path, NULL, self->base, self->lo, self->hi);
	n = symbolize_ip(s, ra, &f);
	expect_str_eq(f[n - 1].function, "test_symbolize_leaf", "no recorded build id");
	expect_int_eq(f[n - 1].line, line, "no recorded build id: line");
	symbolize_free(s);
}

/* A copy of libc without build id and debuglink: only .dynsym names remain. */
static void test_symbolize_stripped(void)
{
	uint64_t entry = (uint64_t)(uintptr_t)test_symbolize_libc_qsort();
	const test_symbolize_module_t *libc = test_symbolize_module_of(entry);
	char copy[] = "/tmp/test_symbolize_libc_XXXXXX";
	char cmd[8192];
	const sym_frame_t *f;
	int fd = mkstemp(copy);

	if (!libc || fd < 0) {
		printf("stripped: skipped\n");
		return;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 "objcopy --remove-section=.gnu_debuglink --remove-section=.note.gnu.build-id "
		 "'%s' '%s' 2>/dev/null",
		 libc->path, copy);
	if (system(cmd) != 0) {
		printf("stripped: skipped (no objcopy)\n");
		unlink(copy);
		return;
	}
	symbolizer_t *s = symbolize_new();
	symbolize_add_module(s, copy, NULL, libc->base, libc->lo, libc->hi);
	int n = symbolize_ip(s, entry + 1, &f);
	test_symbolize_print("stripped libc, qsort entry", f, n);
	expect_int_eq(n, 1, "stripped: one frame");
	expect_str_eq(f[0].function, "qsort", "stripped: .dynsym name");
	expect_str_eq(f[0].file, NULL, "stripped: no file");
	expect_str_eq(f[0].module, copy, "stripped: module");
	symbolize_free(s);
	unlink(copy);
}

/* Copies the file at from to a new temporary file; its path in to (the template). */
static bool test_symbolize_copy(const char *from, char *to)
{
	char buf[65536];
	int out = mkstemp(to);
	FILE *in = fopen(from, "rb");
	bool ok = out >= 0 && in;
	size_t n;

	while (ok && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		ok = write(out, buf, n) == (ssize_t)n;
	ok = ok && !ferror(in);
	if (in)
		fclose(in);
	if (out >= 0)
		close(out);
	return ok;
}

/* Three objects at the test binary's own addresses, first seen in generations 0 (the
 * binary), 1 (a copy of it: same code, another path, its own Dwfl although it overlaps)
 * and 3 (a file gone since), added out of order: a frame belongs to the latest module at
 * or before its generation, modulo 2^15. */
static void test_symbolize_generations(const test_symbolize_module_t *self)
{
	char copy[] = "/tmp/test_symbolize_copy_XXXXXX";
	const sym_frame_t *f, *g0;
	int line;
	uint64_t ra = test_symbolize_leaf(&line);

	if (!test_symbolize_copy(self->path, copy)) {
		printf("generations: skipped (cannot copy %s)\n", self->path);
		unlink(copy);
		return;
	}
	symbolizer_t *s = symbolize_new();
	symbolize_add_module_gen(s, "/nonexistent/libgone.so", NULL, self->base, self->lo, self->hi, 3);
	symbolize_add_module_gen(s, copy, self->build_id, self->base, self->lo, self->hi, 1);
	symbolize_add_module(s, self->path, self->build_id, self->base, self->lo, self->hi);

	static const struct {
		uint32_t gen;
		int which; /* 0 the binary, 1 the copy, 2 the gone file */
	} cases[] = {{0, 0}, {1, 1}, {2, 1}, {3, 2}, {4, 2}, {MP_FRAME_GEN_MASK, 2}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const char *want = cases[i].which == 0 ? self->path : cases[i].which == 1 ? copy
												 : "/nonexistent/libgone.so";
		char what[64];
		int n = symbolize_ip(s, mp_frame_native(ra, cases[i].gen), &f);
		snprintf(what, sizeof(what), "generation %u", (unsigned)cases[i].gen);
		test_symbolize_print(what, f, n);
		expect_int_eq(n, 1, "generations: one frame");
		expect_str_eq(f[0].module, want, "generations: module");
		expect_int_eq(f[0].offset, ra - self->base, "generations: offset of the plain address");
		expect_str_eq(f[0].function, cases[i].which < 2 ? "test_symbolize_leaf" : NULL,
			      "generations: function");
		expect_int_eq(f[0].line, cases[i].which < 2 ? line : 0, "generations: line");
	}
	/* A plain address is a frame of generation 0. */
	int n = symbolize_ip(s, ra, &g0);
	expect_int_eq(n, 1, "plain address: one frame");
	expect_str_eq(g0[0].module, self->path, "plain address: generation 0");
	symbolize_free(s);

	/* Across the wrap: first seen in 32767 and 32768 (15 bits: 0); a frame of 32767 is
	 * the first one's, frames of 0 and 1 (32768, 32769) the second one's. */
	s = symbolize_new();
	symbolize_add_module_gen(s, self->path, self->build_id, self->base, self->lo, self->hi, 32767);
	symbolize_add_module_gen(s, copy, self->build_id, self->base, self->lo, self->hi, 32768);
	symbolize_ip(s, mp_frame_native(ra, 32767), &f);
	expect_str_eq(f[0].module, self->path, "wrap: generation 32767");
	symbolize_ip(s, mp_frame_native(ra, 0), &f);
	expect_str_eq(f[0].module, copy, "wrap: generation 32768");
	symbolize_ip(s, mp_frame_native(ra, 1), &f);
	expect_str_eq(f[0].module, copy, "wrap: generation 32769");
	expect_int_eq(f[0].line, line, "wrap: line");
	symbolize_free(s);
	unlink(copy);
}

/* The test binary's debug info rewritten by dwz, as Debian's -dbgsym packages are: the
 * types shared by its units move to partial units that each unit imports
 * (DW_TAG_imported_unit). The functions, lines and inline chains stay the same. */
static void test_symbolize_dwz(const test_symbolize_module_t *self)
{
	char copy[] = "/tmp/test_symbolize_dwz_XXXXXX";
	char cmd[8192];
	const sym_frame_t *f;
	int line;

	if (system("command -v dwz >/dev/null 2>&1") != 0) {
		printf("dwz: skipped (no dwz; scripts/setup installs it)\n");
		return;
	}
	if (!test_symbolize_copy(self->path, copy)) {
		printf("dwz: skipped (cannot copy %s)\n", self->path);
		unlink(copy);
		return;
	}
	snprintf(cmd, sizeof(cmd), "dwz '%s' 2>/dev/null && readelf --debug-dump=info '%s' 2>/dev/null | grep -q DW_TAG_imported_unit", copy, copy);
	expect_int_eq(system(cmd), 0, "dwz made partial units");
	symbolizer_t *s = symbolize_new();
	symbolize_add_module(s, copy, self->build_id, self->base, self->lo, self->hi);
	uint64_t ra = test_symbolize_leaf(&line);
	int n = symbolize_ip(s, ra, &f);
	test_symbolize_print("dwz, plain call", f, n);
	expect_int_eq(n, 1, "dwz: plain call frames");
	expect_str_eq(f[0].function, "test_symbolize_leaf", "dwz: plain call function");
	expect_int_eq(f[0].line, line, "dwz: plain call line");
	expect_str_eq(f[0].module, copy, "dwz: module");
	test_symbolize_nested(s, "dwz, nested inlines");
	symbolize_free(s);
	unlink(copy);
}

int main(void)
{
	dl_iterate_phdr(test_symbolize_phdr, NULL);
	const test_symbolize_module_t *self =
		test_symbolize_module_of((uint64_t)(uintptr_t)&test_symbolize_leaf);
	if (!self) {
		fprintf(stderr, "cannot find the test's own module\n");
		return 1;
	}
	expect_true(self->build_id[0], "the test binary has a build id");

	symbolizer_t *s = test_symbolize_new_all();
	test_symbolize_own_code(s, self);
	test_symbolize_libc(s);
	test_symbolize_no_module(s);
	test_symbolize_import_cycle(s);
	test_symbolize_lto(s);
	symbolize_free(s);
	test_symbolize_fallbacks(self);
	test_symbolize_stripped();
	test_symbolize_generations(self);
	test_symbolize_dwz(self);

	printf("test_symbolize: %d modules, %lu checks, %lu failures\n", test_symbolize_n_modules,
	       test_symbolize_checks, test_symbolize_failures);
	return test_symbolize_failures ? 1 : 0;
}
