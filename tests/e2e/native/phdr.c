/* Allocations made while the program holds the loader's lock: inside a dl_iterate_phdr
 * callback (as symbolizers and unwinders do), argv[1] blocks of 48 bytes, each freed at
 * once. memprof's writer takes the same lock to look for new modules, so a program
 * thread that waited for the writer here, with its event queue full, would never go on. */
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <stdlib.h>

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)info;
	(void)size;
	long n = *(long *)arg;
	for (long i = 0; i < n; i++) {
		volatile char *p = malloc(48); /* @PHDR */
		if (p)
			p[0] = 1;
		free((void *)p);
	}
	return 1; /* the first object is enough */
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	dl_iterate_phdr(phdr_cb, &n);
	printf("phdr %ld\n", n);
	return 0;
}
