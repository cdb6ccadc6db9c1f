/* Known lines: every allocation function at its own line, with sizes known in advance.
 * stdout gets a static buffer so that stdio allocates nothing; the global heap peak is
 * reached at the calloc (all blocks of the program live then are known). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024 * 1024)
#define TEMP_N 1000

static char outbuf[1 << 16];
static void *volatile sink;
static void *volatile null_ptr; /* realloc(NULL, n) would be folded into malloc(n) by the compiler */
static volatile size_t huge_n = SIZE_MAX - 4096, half_n = SIZE_MAX / 2;

int main(void)
{
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	void *keep[3];
	for (int i = 0; i < 3; i++)
		keep[i] = malloc(MiB); /* @KEEP */
	for (int i = 0; i < 3; i++)
		memset(keep[i], 1, MiB);

	for (int i = 0; i < TEMP_N; i++) {
		void *t = malloc(100); /* @TEMP */
		sink = t;
		free(t);
	}

	void *r = NULL;
	for (int i = 1; i <= 10; i++)
		r = realloc(r, (size_t)i * 1000); /* @REALLOC */

	void *pm = NULL;
	int rc = posix_memalign(&pm, 64, 1000); /* @POSIX_MEMALIGN */
	void *aa = aligned_alloc(64, 2048); /* @ALIGNED_ALLOC */
	void *ma = memalign(128, 3000); /* @MEMALIGN */
	void *va = valloc(5000); /* @VALLOC */
	void *pv = pvalloc(6000); /* @PVALLOC */
	void *ra = reallocarray(null_ptr, 10, 700); /* @REALLOCARRAY */
	printf("posix_memalign=%d aligned=%d %d %d %d %d %d\n", rc, ((uintptr_t)pm % 64) == 0,
	       ((uintptr_t)aa % 64) == 0, ((uintptr_t)ma % 128) == 0, ((uintptr_t)va % 4096) == 0,
	       ((uintptr_t)pv % 4096) == 0, ra != NULL);

	/* edge cases: behave as without memprof */
	errno = 1234;
	void *z = malloc(0); /* @MALLOC0 */
	printf("malloc(0) %s errno=%d\n", z ? "non-null" : "null", errno);
	void *rn = realloc(null_ptr, 64); /* @REALLOC_NULL */
	errno = 4321;
	void *r0 = realloc(rn, 0); /* @REALLOC0 */
	printf("realloc(p,0) %s errno=%d\n", r0 ? "non-null" : "null", errno);
	free(r0);
	errno = 77;
	free(NULL);
	printf("free(NULL) errno=%d\n", errno);
	errno = 0;
	void *huge = malloc(huge_n); /* @HUGE */
	printf("malloc(huge) %s errno=%s\n", huge ? "non-null" : "null", errno == ENOMEM ? "ENOMEM" : "other");
	errno = 0;
	void *hugec = calloc(half_n, 4); /* @HUGE_CALLOC */
	printf("calloc(overflow) %s errno=%s\n", hugec ? "non-null" : "null", errno == ENOMEM ? "ENOMEM" : "other");
	void *bad = NULL;
	int e = posix_memalign(&bad, 3, 100); /* @BAD_ALIGN */
	printf("posix_memalign(3) %s bad=%s\n", e == EINVAL ? "EINVAL" : "other", bad ? "set" : "null");
	errno = 0;
	void *badr = reallocarray(null_ptr, half_n, 4); /* @BAD_REALLOCARRAY */
	printf("reallocarray(overflow) %s errno=%s\n", badr ? "non-null" : "null", errno == ENOMEM ? "ENOMEM" : "other");

	void *c = calloc(4, MiB); /* @CALLOC */
	memset(c, 2, MiB);
	free(c);

	free(z);
	printf("done\n");
	return 0;
}
