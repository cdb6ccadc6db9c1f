/* A library whose destructor frees a block the program made and allocates one it never
 * frees (test_exits, test_library_destructor). */
#include <stdlib.h>

void *dtorlib_block;
void *volatile dtorlib_sink;

__attribute__((destructor)) static void dtorlib_fini(void)
{
	free(dtorlib_block);
	dtorlib_sink = malloc(9191); /* @DTOR_LEAK */
}
