/* A C program whose allocations are made by operator new in a C++ library it links
 * (cxxlib.cpp): 3 x 1 MiB, one freed at once, one freed at the end, one kept. */
#include <stdio.h>
#include <string.h>

char *cxxlib_alloc(size_t n);
void cxxlib_free(char *p);

int main(void)
{
	enum { MiB = 1 << 20 };
	char *a = cxxlib_alloc(MiB), *b = cxxlib_alloc(MiB), *c = cxxlib_alloc(MiB);
	memset(a, 1, MiB);
	memset(b, 2, MiB);
	memset(c, 3, MiB);
	cxxlib_free(a);
	printf("%d %d\n", b[7], c[7]);
	cxxlib_free(b);
	return 0; /* c is never freed */
}
