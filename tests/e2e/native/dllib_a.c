/* A library loaded with dlopen, allocating at a known line, unloaded before exit. */
#include <stdlib.h>

void *lib_alloc(size_t n);
void *lib_alloc(size_t n)
{
	return malloc(n); /* @LIB_A */
}
