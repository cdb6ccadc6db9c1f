/* deep N: recursion N frames deep, then allocations at known lines (stack depth limits) */
#include <stdio.h>
#include <stdlib.h>

static char outbuf[1 << 16];
static void *keep[8];

static __attribute__((noinline)) int down(int n)
{
	if (n == 0) {
		keep[0] = malloc(1111); /* @DEEP */
		return 1;
	}
	int r = down(n - 1);
	return r + (n & 1);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	int n = argc > 1 ? atoi(argv[1]) : 500;
	int r = down(n);
	keep[1] = malloc(2222); /* @SHALLOW */
	printf("deep %d %d\n", n, r);
	return 0;
}
