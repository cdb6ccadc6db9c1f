/* dl LIB_A [LIB_B]: dlopen LIB_A, 5 x lib_alloc(1000) (kept), dlclose; then the same with
 * LIB_B (2 x 3000). Prints whether B was loaded at A's address. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static char outbuf[1 << 16];
static void *keep[16];

static int use(const char *path, int n, size_t size, void **base)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return -1;
	}
	void *(*fn)(size_t) = (void *(*)(size_t))dlsym(h, "lib_alloc");
	Dl_info info;
	if (!fn || !dladdr((void *)fn, &info)) {
		fprintf(stderr, "dlsym: %s\n", dlerror());
		return -1;
	}
	*base = info.dli_fbase;
	static int k;
	for (int i = 0; i < n; i++)
		keep[k++] = fn(size);
	return dlclose(h);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	void *a = NULL, *b = NULL;
	if (argc < 2 || use(argv[1], 5, 1000, &a))
		return 1;
	if (argc > 2 && use(argv[2], 2, 3000, &b))
		return 1;
	printf("dl done\n");
	fprintf(stderr, "same base: %d\n", a == b);
	return 0;
}
