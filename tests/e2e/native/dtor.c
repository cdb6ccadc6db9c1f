/* dtor: allocates a block that its library's destructor frees at exit (dtorlib.c). */
#include <stdlib.h>

extern void *dtorlib_block;

int main(void)
{
	dtorlib_block = malloc(8080); /* @DTOR_BLOCK */
	return 0;
}
