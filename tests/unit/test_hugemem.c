/* Checks analyzer/hugemem.c: zeroed memory of every size around the threshold (below it
 * from calloc, from it on a mapping of its own aligned to 2 MiB), sizes that are not a
 * multiple of a page among them, all of it writable; and that freeing gives every
 * mapping back: nothing of the table or of the spare mapped beyond it is left (the tail
 * of a size that is not whole pages once was). */
#include "hugemem.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static unsigned test_hugemem_failures;

/* Whether any mapping of the process overlaps [lo, hi). */
static bool test_hugemem_mapped(uintptr_t lo, uintptr_t hi)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool any = false;
	if (!f)
		return true;
	while (!any && fgets(line, sizeof line, f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a < hi && lo < b)
			any = true;
	}
	fclose(f);
	return any;
}

static void test_hugemem_size(size_t n, size_t size)
{
	unsigned char *p = hugemem_calloc(n, size);
	size_t bytes = n * size;
	if (!p) {
		fprintf(stderr, "%zu x %zu: no memory\n", n, size);
		test_hugemem_failures++;
		return;
	}
	for (size_t i = 0; i < bytes; i += 4096)
		if (p[i]) {
			fprintf(stderr, "%zu x %zu: byte %zu not zero\n", n, size, i);
			test_hugemem_failures++;
			break;
		}
	if (bytes && p[bytes - 1]) {
		fprintf(stderr, "%zu x %zu: last byte not zero\n", n, size);
		test_hugemem_failures++;
	}
	if (bytes >= HUGEMEM_MIN && (uintptr_t)p % HUGEMEM_MIN) {
		fprintf(stderr, "%zu x %zu: %p not aligned to 2 MiB\n", n, size, (void *)p);
		test_hugemem_failures++;
	}
	memset(p, 0xa5, bytes);
	hugemem_free(p, n, size);
	/* nothing of it left: the table's pages, and the page after them, which the spare
	 * mapped beyond the table began with (at least a page of it: its start was moved up
	 * by less than HUGEMEM_MIN) */
	uintptr_t end = ((uintptr_t)p + bytes + 4095) & ~(uintptr_t)4095;
	if (bytes >= HUGEMEM_MIN && test_hugemem_mapped((uintptr_t)p, end + 4096)) {
		fprintf(stderr, "%zu x %zu: still mapped after hugemem_free\n", n, size);
		test_hugemem_failures++;
	}
}

int main(void)
{
	static const size_t sizes[][2] = {
		{0, 16}, {1, 1}, {4096, 16}, {(2u << 20) / 16 - 1, 16}, {(2u << 20) / 16, 16},
		{(4u << 20) / 16, 16}, {100003, 56}, {(2u << 20) / 24 + 1, 24}, {1234567, 24},
	};
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
			test_hugemem_size(sizes[i][0], sizes[i][1]);
	if (hugemem_calloc(SIZE_MAX / 8, 16)) {
		fprintf(stderr, "an overflowing size was given memory\n");
		test_hugemem_failures++;
	}
	printf("test_hugemem: %s\n", test_hugemem_failures ? "FAILED" : "ok");
	return test_hugemem_failures != 0;
}
