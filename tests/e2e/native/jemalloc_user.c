/* A program that uses jemalloc itself: its allocations are recorded (memprof's malloc
 * calls the program's jemalloc), and its jemalloc keeps its own settings (memprof's
 * private jemalloc and its configuration are not the program's). */
#include <jemalloc/jemalloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	unsigned narenas;
	bool tcache;
	size_t sz = sizeof narenas;
	mallctl("opt.narenas", &narenas, &sz, NULL, 0);
	sz = sizeof tcache;
	mallctl("opt.tcache", &tcache, &sz, NULL, 0);
	char *p[3];
	for (int i = 0; i < 3; i++)
		p[i] = malloc(1 << 20); // @JE_MALLOC
	for (int i = 0; i < 3; i++)
		memset(p[i], i, 1 << 20);
	printf("narenas %u tcache %d usable %zu\n", narenas, (int)tcache, malloc_usable_size(p[1]));
	free(p[0]);
	free(p[1]);
	return p[2][5] - 2; /* p[2] is never freed */
}
