/* Known lines: anonymous mappings made with mmap and mremap and cut with munmap (and
 * mmap MAP_FIXED), sizes known in advance. Each mapping is one block of whole pages; a
 * cut leaves the block what is still mapped. The global heap peak is at @PEAK. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB 1024
#define MiB (1024 * 1024)
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

static char outbuf[1 << 16];
static void *volatile sink;

static void *map(size_t n)
{
	void *p = mmap(NULL, n, RW, ANON, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

/* `mmap stress N T`: T threads map (MAP_FIXED) and give back (PROT_NONE over them: a cut
 * as munmap's) N random page ranges inside one 64 MiB reservation, one at a time (a
 * lock), so that they cut and replace each other's in every way; prints the bytes left
 * mapped (known from a map of the pages): the profile's live bytes at the end. */
enum { STRESS_PAGES = 16384 };
static unsigned char stress_mapped[STRESS_PAGES];
static char *stress_base;
static long stress_n;
static pthread_mutex_t stress_lock = PTHREAD_MUTEX_INITIALIZER;

static void *stress_thread(void *arg)
{
	uint64_t x = 88172645463325252ull + (uintptr_t)arg;
	for (long k = 0; k < stress_n; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t first = x % STRESS_PAGES, len = 1 + (x >> 20) % 64;
		if (first + len > STRESS_PAGES)
			len = STRESS_PAGES - first;
		char *at = stress_base + first * 4096;
		pthread_mutex_lock(&stress_lock);
		if ((x >> 40) % 3) {
			if (mmap(at, len * 4096, RW, ANON | MAP_FIXED, -1, 0) != at) /* @STRESS */
				abort();
			memset(stress_mapped + first, 1, len);
		} else {
			/* given back to the reservation, not unmapped: pages unmapped are no longer
			 * the program's, and another mapping (the writer's memory) may land there */
			if (mmap(at, len * 4096, PROT_NONE, ANON | MAP_FIXED | MAP_NORESERVE, -1, 0) != at)
				abort();
			memset(stress_mapped + first, 0, len);
		}
		pthread_mutex_unlock(&stress_lock);
	}
	return NULL;
}

static int stress(long n, int threads)
{
	stress_base = mmap(NULL, (size_t)STRESS_PAGES * 4096, PROT_NONE, ANON | MAP_NORESERVE, -1, 0);
	if (stress_base == MAP_FAILED || threads < 1 || threads > 16)
		return 2;
	stress_n = n / threads;
	pthread_t th[16];
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, stress_thread, (void *)(uintptr_t)i);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	size_t live = 0;
	for (size_t i = 0; i < STRESS_PAGES; i++)
		live += stress_mapped[i] * 4096u;
	printf("%zu\n", live);
	return 0;
}

/* `mmap fork`: the parent keeps 1 MiB mapped; its forked child unmaps that (the parent's
 * block, not the child's) and maps 2 MiB of its own. */
static int forked(void)
{
	char *p = map(MiB); /* @PARENT */
	pid_t pid = fork();
	if (pid == 0) {
		munmap(p, MiB);
		sink = mmap(NULL, 2 * MiB, RW, ANON, -1, 0); /* @CHILD */
		_exit(0);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return 2;
	p[0] = 1;
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	if (argc > 1 && !strcmp(argv[1], "fork"))
		return forked();
	if (argc > 3 && !strcmp(argv[1], "stress"))
		return stress(atol(argv[2]), atoi(argv[3]));
	void *keep[3];
	for (int i = 0; i < 3; i++)
		keep[i] = mmap(NULL, MiB, RW, ANON, -1, 0); /* @KEEP */
	sink = keep;

	for (int i = 0; i < 10; i++) {
		void *t = mmap(NULL, 64 * KiB, RW, ANON, -1, 0); /* @TEMP */
		munmap(t, 64 * KiB);
	}

	/* 4 MiB cut to the 2 MiB inside it that is 2 MiB-aligned */
	char *big = mmap(NULL, 4 * MiB, RW, ANON, -1, 0); /* @ALIGNED */
	uintptr_t a = ((uintptr_t)big + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1);
	size_t head = a - (uintptr_t)big, tail = 4 * MiB - head - 2 * MiB;
	if (head)
		munmap(big, head);
	if (tail)
		munmap((char *)a + 2 * MiB, tail);

	/* the first page cut: the block moves to the second, alive at the peak; the rest
	 * unmapped after it */
	char *hd = mmap(NULL, MiB, RW, ANON, -1, 0); /* @HEAD */
	munmap(hd, 4096);

	/* mapped, its tail cut, then the rest unmapped before the next allocation: temporary */
	for (int i = 0; i < 5; i++) {
		char *t = mmap(NULL, 64 * KiB, RW, ANON, -1, 0); /* @TRIM */
		munmap(t + 60 * KiB, 4 * KiB);
		munmap(t, 60 * KiB);
	}

	/* three mappings side by side (in a reservation), one munmap across them: the first
	 * keeps its lower half, the second goes, the third keeps its upper half */
	char *span = mmap(NULL, 3 * MiB, PROT_NONE, ANON | MAP_NORESERVE, -1, 0);
	for (int i = 0; i < 3; i++)
		mmap(span + i * MiB, MiB, RW, ANON | MAP_FIXED, -1, 0); /* @SPAN */
	munmap(span + 512 * KiB, 2 * MiB);

	/* a hole in the middle: 768 KiB left */
	char *h = mmap(NULL, MiB, RW, ANON, -1, 0); /* @HOLE */
	munmap(h + 256 * KiB, 256 * KiB);

	/* grown by mremap: as realloc, the old block freed, the new one the mremap's */
	void *m = mmap(NULL, MiB, RW, ANON, -1, 0); /* @MREMAP_SRC */
	memset(m, 1, MiB);
	void *m2 = mremap(m, MiB, 4 * MiB, MREMAP_MAYMOVE); /* @MREMAP */
	if (m2 == MAP_FAILED) {
		perror("mremap");
		return 2;
	}

	/* a mapping with MAP_FIXED over the middle of another */
	char *fb = mmap(NULL, MiB, RW, ANON, -1, 0); /* @FIXED_BASE */
	void *fx = mmap(fb + 256 * KiB, 256 * KiB, RW, ANON | MAP_FIXED, -1, 0); /* @FIXED */
	if (fx != fb + 256 * KiB) {
		perror("mmap MAP_FIXED");
		return 2;
	}

	/* not recorded: a file's pages, a reservation of address space */
	int fd = open("/proc/self/exe", O_RDONLY);
	void *f = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0); /* @FILE */
	if (f != MAP_FAILED)
		munmap(f, 8192);
	close(fd);
	void *r = mmap(NULL, 64 * MiB, PROT_NONE, ANON | MAP_NORESERVE, -1, 0); /* @RESERVE */
	munmap(r, 64 * MiB);

	/* whole pages: 5000 bytes map 8192 */
	sink = mmap(NULL, 5000, RW, ANON, -1, 0); /* @ODD */

	/* malloc's own mapping is malloc's block, recorded once */
	void *bm = malloc(8 * MiB); /* @BIGMALLOC */
	sink = bm;

	void *pk = map(16 * MiB); /* @PEAK */
	memset(pk, 1, 4096);
	munmap(pk, 16 * MiB);
	munmap(hd + 4096, MiB - 4096);

	/* errors change nothing, and errno is the system's */
	errno = 0;
	int rc = munmap((char *)h + 1, 4096);
	int e1 = errno;
	errno = 0;
	void *bad = mmap(NULL, 0, RW, ANON, -1, 0);
	int e2 = errno;
	errno = 1234;
	void *ok = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* @ERRNO */
	int e3 = errno;
	munmap(ok, 4096);
	printf("munmap(unaligned)=%d %s mmap(0)=%s %s errno kept=%d\n", rc, e1 == EINVAL ? "EINVAL" : "?",
	       bad == MAP_FAILED ? "failed" : "mapped", e2 == EINVAL ? "EINVAL" : "?", e3 == 1234 && errno == 1234);
	printf("done\n");
	return 0;
}
