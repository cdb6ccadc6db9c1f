/* rbpreg: code built without frame pointers that keeps a value of its own in rbp (as
 * optimized code may: rbp is then a callee-saved register like rbx), called from code
 * with a frame pointer. `outer` puts a different value in rbp for every call of
 * `middle`, which saves rbp in its prologue (its CFI says where) and allocates. The
 * word middle saves differs on every call, but no frame's CFA is computed from it:
 * main's CFA is computed from the rbp that outer saved (main's frame pointer). So the
 * chain reads a saved rbp (outer's), and memprof's unwinder must check that one and
 * not middle's (each stack would miss its chain cache), nor be misled by either.
 * Allocates N blocks of 48 bytes (argv[1], default 20000) from one line, frees them,
 * and prints their count. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;

__attribute__((noinline)) static void *middle(size_t n)
{
	/* clobbering rbp makes the function save and restore it, as a register of its own */
	__asm__ volatile("xor %%ebp, %%ebp" ::: "rbp");
	void *p = malloc(n); /* the allocation line */
	sink = p;
	return p;
}

__attribute__((noinline)) static unsigned long outer(void **blocks, unsigned long n)
{
	unsigned long made = 0;
	for (unsigned long i = 0; i < n; i++) {
		/* rbp holds i + 1 across the call: middle saves that word */
		__asm__ volatile("lea 1(%0), %%rbp" ::"r"(i) : "rbp");
		blocks[i] = middle(48);
		made += blocks[i] != NULL;
	}
	return made;
}

/* with a frame pointer: its CFA is rbp + 16 */
__attribute__((optimize("no-omit-frame-pointer"))) int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
	void **blocks = calloc(n, sizeof *blocks);
	if (!blocks)
		return 1;
	unsigned long made = outer(blocks, n);
	for (unsigned long i = 0; i < n; i++)
		free(blocks[i]);
	free(blocks);
	printf("%lu blocks\n", made);
	return 0;
}
