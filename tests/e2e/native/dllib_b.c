/* A second library, loaded after the first one was unloaded (often at the same address). */
#include <stdlib.h>

static void *volatile sink;

void *lib_alloc(size_t n);
void *lib_alloc(size_t n)
{
	sink = NULL;
	sink = NULL;
	return calloc(1, n); /* @LIB_B */
}
