/* dlcxx LIB: a C program that loads a C++ library (cxxlib.cpp) with dlopen(RTLD_LOCAL),
 * so that libstdc++ comes into the process only then, outside the global scope: 3 x 1 MiB
 * from its operator new, one freed at once, one freed at the end, one kept. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	enum { MiB = 1 << 20 };
	void *h = argc > 1 ? dlopen(argv[1], RTLD_NOW | RTLD_LOCAL) : NULL;
	char *(*alloc)(size_t) = h ? (char *(*)(size_t))dlsym(h, "cxxlib_alloc") : NULL;
	void (*release)(char *) = h ? (void (*)(char *))dlsym(h, "cxxlib_free") : NULL;
	if (!alloc || !release) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	char *a = alloc(MiB), *b = alloc(MiB), *c = alloc(MiB);
	memset(a, 1, MiB);
	memset(b, 2, MiB);
	memset(c, 3, MiB);
	release(a);
	printf("%d %d\n", b[7], c[7]);
	release(b);
	return 0; /* c is never freed */
}
