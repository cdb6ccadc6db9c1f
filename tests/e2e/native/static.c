/* A statically linked program (test_run): no loader, so no preload. Exits 3. */
#include <stdio.h>

int main(void)
{
	puts("static");
	return 3;
}
