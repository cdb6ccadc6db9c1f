/* Checks analyzer/pyline.c against CPython 3.11 itself (and 3.12, 3.13), and against
 * 3.9 and 3.10 through the capture's conversion of their line tables
 * (preload/pyline_convert.c).
 *
 * gen_pyline_cases.py (run with the real interpreter given on the command line) dumps
 * the location tables of thousands of code objects with the line of every code unit as
 * co_lines()/PyCode_Addr2Line report it; every one must come back from
 * pyline_addr2line. Truncated, mutated and random tables must give -1 or a line the
 * full table agrees with, never a read past the end (run the ASan build to prove it).
 * Exit 77 (skipped) when no Python 3.9 to 3.13 is available.
 */
#include "pyline.h"
#include "pyline_convert.h"
#include "unit_rand.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct test_pyline_case {
	uint8_t *table;
	uint32_t len;
	int32_t firstlineno;
	uint32_t units;
	int32_t *lines;
} test_pyline_case_t;

static unsigned long test_pyline_checks, test_pyline_failures;
static const char *test_pyline_converted; /* the version whose tables were converted */

#define expect_int_eq(got, want, ...)                                                       \
	do {                                                                                \
		long long got_ = (got), want_ = (want);                                     \
		test_pyline_checks++;                                                       \
		if (got_ != want_ && test_pyline_failures++ < 20) {                         \
			fprintf(stderr, "%s:%d: got %lld, want %lld: ", __FILE__, __LINE__, \
				got_, want_);                                               \
			fprintf(stderr, __VA_ARGS__);                                       \
			fputc('\n', stderr);                                                \
		}                                                                           \
	} while (0)

static uint64_t test_pyline_rng = 0x9e3779b97f4a7c15ull;

static uint64_t test_pyline_rand(void)
{
	return unit_rand(&test_pyline_rng);
}

/* Runs `python gen out` and waits for it; 0 on success. */
static int test_pyline_generate(const char *python, const char *gen, const char *out)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execl(python, python, gen, out, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static uint8_t *test_pyline_read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*size = (size_t)n;
	}
	fclose(f);
	return buf;
}

/* Splits the generator's dump into cases; returns the count or -1 if malformed. */
static long test_pyline_parse(const uint8_t *buf, size_t size, test_pyline_case_t **out)
{
	size_t pos = 8, cap = 0;
	long n = 0;
	test_pyline_case_t *cases = NULL;

	bool v310 = size >= 8 && memcmp(buf, "PYLC0310", 8) == 0;
	bool v39 = size >= 8 && memcmp(buf, "PYLC0309", 8) == 0;
	if (size < 8 || (memcmp(buf, "PYLC0001", 8) != 0 && !v310 && !v39))
		return -1;
	while (pos < size) {
		test_pyline_case_t c;
		if (size - pos < 12)
			return -1;
		memcpy(&c.len, buf + pos, 4);
		memcpy(&c.firstlineno, buf + pos + 4, 4);
		memcpy(&c.units, buf + pos + 8, 4);
		pos += 12;
		if (size - pos < c.len || (size - pos - c.len) / 4 < c.units)
			return -1;
		/* Exact-size copies so ASan sees any read past the end of a table. */
		c.table = malloc(c.len ? c.len : 1);
		c.lines = malloc(((size_t)c.units + 1) * 4);
		if (!c.table || !c.lines)
			return -1;
		memcpy(c.table, buf + pos, c.len);
		pos += c.len;
		if (v310 || v39) {
			/* what the capture writes of the code object, exactly as long */
			size_t bound = v39 ? pyline39_bound(c.len, (size_t)c.units * 2) : pyline310_bound(c.len);
			uint8_t *t = malloc(bound), *conv;
			if (!t)
				return -1;
			size_t got = v39 ? pyline39_convert(c.table, c.len, (size_t)c.units * 2, t)
					 : pyline310_convert(c.table, c.len, t);
			if (got > bound || !(conv = malloc(got ? got : 1)))
				return -1;
			memcpy(conv, t, got);
			free(t);
			free(c.table);
			c.table = conv;
			c.len = (uint32_t)got;
			test_pyline_converted = v39 ? "3.9" : "3.10";
		}
		memcpy(c.lines, buf + pos, (size_t)c.units * 4);
		pos += (size_t)c.units * 4;
		if ((size_t)n == cap) {
			cap = cap ? cap * 2 : 1024;
			cases = realloc(cases, cap * sizeof(*cases));
			if (!cases)
				return -1;
		}
		cases[n++] = c;
	}
	*out = cases;
	return n;
}

/* Which entry forms (the 4-bit code of each entry's first byte) the cases contain. */
static void test_pyline_forms(const test_pyline_case_t *c, unsigned long forms[16])
{
	for (uint32_t i = 0; i < c->len; i++)
		if (c->table[i] & 0x80)
			forms[(c->table[i] >> 3) & 15]++;
}

static void test_pyline_exact(const test_pyline_case_t *cases, long n)
{
	for (long i = 0; i < n; i++) {
		const test_pyline_case_t *c = &cases[i];
		for (uint32_t off = 0; off < c->units; off++)
			expect_int_eq(pyline_addr2line(c->table, c->len, c->firstlineno, off),
				      c->lines[off], "case %ld offset %" PRIu32, i, off);
		/* Past the last instruction there is no line. */
		expect_int_eq(pyline_addr2line(c->table, c->len, c->firstlineno, c->units), -1,
			      "case %ld past end", i);
		expect_int_eq(pyline_addr2line(c->table, c->len, c->firstlineno, UINT32_MAX), -1,
			      "case %ld at UINT32_MAX", i);
	}
}

/* Every prefix of small tables: each answer is -1 or what the full table says. */
static void test_pyline_truncated(const test_pyline_case_t *cases, long n)
{
	long done = 0;

	for (long i = 0; i < n && done < 600; i++) {
		const test_pyline_case_t *c = &cases[i];
		if (c->len > 160)
			continue;
		done++;
		for (uint32_t cut = 0; cut < c->len; cut++) {
			uint8_t *t = malloc(cut ? cut : 1);
			memcpy(t, c->table, cut);
			for (uint32_t off = 0; off < c->units; off++) {
				int got = pyline_addr2line(t, cut, c->firstlineno, off);
				expect_int_eq(got == -1 || got == c->lines[off], 1,
					      "case %ld cut %" PRIu32 " offset %" PRIu32 ": %d vs %d",
					      i, cut, off, got, c->lines[off]);
			}
			free(t);
		}
	}
}

/* Random bytes and real tables with one byte changed: must not crash or over-read. */
static void test_pyline_garbage(const test_pyline_case_t *cases, long n)
{
	for (int round = 0; round < 200000; round++) {
		size_t len = test_pyline_rand() % 48;
		uint8_t *t = malloc(len ? len : 1);
		for (size_t j = 0; j < len; j++)
			t[j] = (uint8_t)test_pyline_rand();
		int got = pyline_addr2line(t, len, (int)(test_pyline_rand() % 100000),
					   (uint32_t)(test_pyline_rand() % 200));
		expect_int_eq(got >= -1, 1, "random table gave %d", got);
		free(t);
	}
	for (int round = 0; round < 200000 && n > 0; round++) {
		const test_pyline_case_t *c = &cases[test_pyline_rand() % (uint64_t)n];
		if (!c->len || !c->units)
			continue;
		uint8_t *t = malloc(c->len);
		memcpy(t, c->table, c->len);
		t[test_pyline_rand() % c->len] = (uint8_t)test_pyline_rand();
		int got = pyline_addr2line(t, c->len, c->firstlineno,
					   (uint32_t)(test_pyline_rand() % c->units));
		expect_int_eq(got >= -1, 1, "mutated table gave %d", got);
		free(t);
	}
	/* 3.10's tables, random: the conversion stays within its bound (an exact-size
	 * buffer, for ASan) and its table decodes */
	for (int round = 0; round < 100000; round++) {
		size_t len = test_pyline_rand() % 64;
		uint8_t in[64];
		for (size_t j = 0; j < len; j++)
			in[j] = (uint8_t)test_pyline_rand();
		size_t bound = pyline310_bound(len);
		uint8_t *t = malloc(bound);
		size_t got = pyline310_convert(in, len, t);
		expect_int_eq(got <= bound, 1, "3.10 table of %zu bytes converted to %zu (bound %zu)", len, got, bound);
		int line = pyline_addr2line(t, got, 1000, (uint32_t)(test_pyline_rand() % 1000));
		expect_int_eq(line >= -1, 1, "converted random 3.10 table gave %d", line);
		free(t);
	}
	/* 3.10 by hand: a range of length 0 moves the line (+5, then +1 over 2 units: 6);
	 * one without a line (-128) leaves it (4 units); a change of -3 over 254 bytes (127
	 * units, 16 entries), a range of 255 bytes (128 units with the odd byte carried) */
	static const uint8_t t310[] = {0, 5, 4, 1, 8, 0x80, 2, 0xfd, 254, 0, 1, 0, 255, 2};
	uint8_t conv[sizeof t310 / 2 * 48 + 48];
	size_t cl = pyline310_convert(t310, sizeof t310, conv);
	static const struct { uint32_t unit; int line; } want310[] = {
		{0, 106}, {1, 106}, {2, -1}, {5, -1}, {6, 103}, {7, 103}, {133, 103}, {134, 105}, {261, 105}, {262, -1}};
	for (size_t i = 0; i < sizeof want310 / sizeof want310[0]; i++)
		expect_int_eq(pyline_addr2line(conv, cl, 100, want310[i].unit), want310[i].line, "3.10 by hand, unit %u",
			      (unsigned)want310[i].unit);
	/* 3.9 by hand: line 100 at bytes 0-5; +1, then +2 at a change of position of 0: 103
	 * at bytes 6-9; -2: 101 from byte 10 to the end of the code (16 bytes). And random
	 * tables. */
	static const uint8_t t39[] = {6, 1, 0, 2, 4, 0xfe};
	size_t cl39 = pyline39_convert(t39, sizeof t39, 16, conv);
	static const struct { uint32_t unit; int line; } want39[] = {
		{0, 100}, {2, 100}, {3, 103}, {4, 103}, {5, 101}, {7, 101}, {8, -1}};
	for (size_t i = 0; i < sizeof want39 / sizeof want39[0]; i++)
		expect_int_eq(pyline_addr2line(conv, cl39, 100, want39[i].unit), want39[i].line, "3.9 by hand, unit %u",
			      (unsigned)want39[i].unit);
	for (int round = 0; round < 100000; round++) {
		size_t len = test_pyline_rand() % 64, code_len = test_pyline_rand() % 4096;
		uint8_t in[64];
		for (size_t j = 0; j < len; j++)
			in[j] = (uint8_t)test_pyline_rand();
		size_t bound = pyline39_bound(len, code_len);
		uint8_t *t = malloc(bound);
		size_t got = pyline39_convert(in, len, code_len, t);
		expect_int_eq(got <= bound, 1, "3.9 table of %zu bytes converted to %zu (bound %zu)", len, got, bound);
		/* every code unit has a line (firstlineno large enough that none is below 1) */
		uint32_t unit = (uint32_t)(test_pyline_rand() % (code_len / 2 + 1));
		int line = pyline_addr2line(t, got, 1000000, unit);
		expect_int_eq(unit < code_len / 2 ? line > 0 : line == -1, 1, "converted random 3.9 table: unit %u of %zu gave %d",
			      (unsigned)unit, code_len / 2, line);
		free(t);
	}
	expect_int_eq(pyline_addr2line(NULL, 0, 1, 0), -1, "NULL table");
	/* Hand-made entries: long form with a 5-chunk varint, then a no-line entry. */
	static const uint8_t hand[] = {0xf0, 0x40 | 0x00, 0x40, 0x40, 0x40, 0x02, 0, 0, 0, 0xf9};
	expect_int_eq(pyline_addr2line(hand, sizeof(hand), 7, 0), 7 + (1 << 24), "long form");
	expect_int_eq(pyline_addr2line(hand, sizeof(hand), 7, 1), -1, "no-line entry");
	expect_int_eq(pyline_addr2line(hand, sizeof(hand), 7, 3), -1, "past end");
	/* An entry starting without the high bit is damage. */
	static const uint8_t bad[] = {0x68, 0x00};
	expect_int_eq(pyline_addr2line(bad, sizeof(bad), 7, 0), -1, "bad entry start");
}

int main(int argc, char **argv)
{
	char path[] = "/tmp/test_pyline_XXXXXX";
	unsigned long forms[16] = {0};
	test_pyline_case_t *cases = NULL;
	size_t size = 0;
	long n;
	int fd;

	if (argc < 3 || access(argv[1], X_OK) != 0) {
		fprintf(stderr, "usage: test_pyline PYTHON3.1X gen_pyline_cases.py (skipped)\n");
		return 77;
	}
	fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		return 1;
	}
	close(fd);
	if (test_pyline_generate(argv[1], argv[2], path) != 0) {
		fprintf(stderr, "generator failed (not Python 3.9 to 3.13?)\n");
		unlink(path);
		return 77;
	}
	uint8_t *buf = test_pyline_read_file(path, &size);
	unlink(path);
	if (!buf || (n = test_pyline_parse(buf, size, &cases)) < 0) {
		fprintf(stderr, "cannot read generated cases\n");
		return 1;
	}
	free(buf);

	for (long i = 0; i < n; i++)
		test_pyline_forms(&cases[i], forms);
	for (unsigned code = 0; code < 16; code++)
		/* (3.10's tables converted have forms 13 and 15 only, 3.9's 13) */
		if (!forms[code] && (test_pyline_converted ? code == 13 || (code == 15 && !strcmp(test_pyline_converted, "3.10"))
							   : code == 0 || code >= 10))
			fprintf(stderr, "warning: no entry of form %u in the cases\n", code);

	unsigned long before = test_pyline_checks;
	test_pyline_exact(cases, n);
	unsigned long exact = test_pyline_checks - before;
	before = test_pyline_checks;
	test_pyline_truncated(cases, n);
	unsigned long truncated = test_pyline_checks - before;
	before = test_pyline_checks;
	test_pyline_garbage(cases, n);
	unsigned long garbage = test_pyline_checks - before;

	printf("test_pyline: %ld code objects%s%s%s; %lu exact checks against CPython, %lu on "
	       "truncated tables, %lu on random/mutated tables; entry forms short=%lu "
	       "one-line=%lu no-columns=%lu long=%lu none=%lu; %lu failures\n",
	       n, test_pyline_converted ? " (" : "", test_pyline_converted ? test_pyline_converted : "",
	       test_pyline_converted ? "'s tables, converted)" : "", exact, truncated, garbage,
	       forms[0] + forms[1] + forms[2] + forms[3] + forms[4] + forms[5] + forms[6] +
		       forms[7] + forms[8] + forms[9],
	       forms[10] + forms[11] + forms[12], forms[13], forms[14], forms[15],
	       test_pyline_failures);
	for (long i = 0; i < n; i++) {
		free(cases[i].table);
		free(cases[i].lines);
	}
	free(cases);
	return test_pyline_failures ? 1 : 0;
}
