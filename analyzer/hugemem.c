/* hugemem: see hugemem.h. */
#include "hugemem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* The length of the mapping for n * size bytes (at least HUGEMEM_MIN): whole pages, so
 * that the trimming and munmap take exactly what was mapped. */
static size_t hugemem_len(size_t bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return (bytes + page - 1) / page * page;
}

void *hugemem_calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	if (n * size < HUGEMEM_MIN)
		return calloc(n ? n : 1, size ? size : 1);
	size_t bytes = hugemem_len(n * size);
	/* mapped with HUGEMEM_MIN to spare, then trimmed to an aligned start */
	size_t len = bytes + HUGEMEM_MIN;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	char *start = (char *)(((uintptr_t)p + HUGEMEM_MIN - 1) & ~(uintptr_t)(HUGEMEM_MIN - 1));
	if (start > p)
		munmap(p, (size_t)(start - p));
	if (start + bytes < p + len)
		munmap(start + bytes, (size_t)(p + len - (start + bytes)));
	madvise(start, bytes, MADV_HUGEPAGE); /* a hint: without THP, 4 KiB pages */
	return start;
}

void hugemem_free(void *p, size_t n, size_t size)
{
	if (!p)
		return;
	if (n * size < HUGEMEM_MIN)
		free(p);
	else
		munmap(p, hugemem_len(n * size));
}
