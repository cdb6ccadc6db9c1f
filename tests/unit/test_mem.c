/* Checks preload/mem.c's reuse cache in front of memprof's private jemalloc: a freed
 * block comes back for the next request of its size class and never for another class
 * (every block handed out has the usable size its request asks for); blocks larger than
 * 64 KiB are not kept, nor more than 256 KiB in all; and while the cache's lock is held
 * (as the fork handler holds it) both functions go to jemalloc without waiting. */
#include "mem.h"

#include <stdio.h>
#include <string.h>

#define TEST_MEM_MAX_BLOCK (64u << 10)
#define TEST_MEM_CACHE_BYTES (256u << 10)
#define TEST_MEM_MAX_CLASSES 64

static unsigned test_mem_failures;

static void test_mem_expect(int ok, const char *what, unsigned long got, unsigned long want)
{
	if (!ok) {
		fprintf(stderr, "FAIL %s: got %lu, want %lu\n", what, got, want);
		test_mem_failures++;
	}
}

/* jemalloc's size classes up to TEST_MEM_MAX_BLOCK, as the usable sizes of blocks. */
static unsigned test_mem_classes(size_t *cls)
{
	unsigned n = 0;
	for (size_t s = 1; s <= TEST_MEM_MAX_BLOCK; s++) {
		void *p = mem_alloc(s);
		size_t u = mem_usable(p);
		mem_free(p);
		if (!n || u != cls[n - 1]) {
			if (n == TEST_MEM_MAX_CLASSES)
				return n;
			cls[n++] = u;
		}
		s = u; /* the next request is of the next class */
	}
	return n;
}

int main(void)
{
	if (mem_init() < 0) {
		fprintf(stderr, "FAIL mem_init\n");
		return 1;
	}
	size_t cls[TEST_MEM_MAX_CLASSES];
	unsigned nc = test_mem_classes(cls);
	test_mem_expect(nc >= 40 && nc < TEST_MEM_MAX_CLASSES, "size classes up to 64 KiB", nc, 45);
	test_mem_expect(cls[nc - 1] == TEST_MEM_MAX_BLOCK, "largest class", cls[nc - 1], TEST_MEM_MAX_BLOCK);

	/* one freed block of every class (the cache's cap allowing), then one request of
	 * every class: each gets a block of its own class, and the classes whose block was
	 * kept get that block back */
	void *freed[TEST_MEM_MAX_CLASSES];
	size_t kept = 0;
	unsigned nkept = 0;
	for (unsigned i = 0; i < nc; i++) {
		freed[i] = mem_reuse_alloc(cls[i]);
		test_mem_expect(mem_usable(freed[i]) == cls[i], "usable size of a new block", mem_usable(freed[i]), cls[i]);
	}
	for (unsigned i = 0; i < nc; i++) {
		if (kept + cls[i] <= TEST_MEM_CACHE_BYTES)
			kept += cls[i], nkept++;
		mem_reuse_free(freed[i]);
	}
	test_mem_expect(mem_reuse_cached() == kept, "bytes kept of one block a class", mem_reuse_cached(), kept);
	/* (a block not kept went back to jemalloc, which may hand its address out again:
	 * only the kept ones are compared by address) */
	for (unsigned i = 0; i < nc; i++) {
		void *p = mem_reuse_alloc(cls[i]);
		test_mem_expect(mem_usable(p) == cls[i], "usable size of a block from the cache", mem_usable(p), cls[i]);
		if (i < nkept)
			test_mem_expect(p == freed[i], "a kept block comes back for its class", p == freed[i], 1);
		memset(p, 0xa5, cls[i]); /* the whole class is the block's (ASan checks) */
		freed[i] = p;
	}
	test_mem_expect(mem_reuse_cached() == 0, "bytes kept once every class took its block", mem_reuse_cached(), 0);
	for (unsigned i = 0; i < nc; i++)
		mem_free(freed[i]);

	/* a smaller request of the same class gets the block too */
	void *a = mem_reuse_alloc(5000);
	size_t ua = mem_usable(a);
	mem_reuse_free(a);
	void *b = mem_reuse_alloc(ua - 100);
	test_mem_expect(b == a, "a smaller request of the class", b == a, 1);
	mem_reuse_free(b);

	/* a larger block is never kept */
	size_t before = mem_reuse_cached();
	void *l = mem_reuse_alloc(TEST_MEM_MAX_BLOCK + 1);
	test_mem_expect(mem_usable(l) > TEST_MEM_MAX_BLOCK, "usable size of a large block", mem_usable(l),
			TEST_MEM_MAX_BLOCK + 1);
	mem_reuse_free(l);
	test_mem_expect(mem_reuse_cached() == before, "bytes kept after a large block's free", mem_reuse_cached(),
			before);

	/* the cap: 64 KiB blocks, five of them freed; four are kept */
	void *big[5];
	for (unsigned i = 0; i < 5; i++)
		big[i] = mem_reuse_alloc(TEST_MEM_MAX_BLOCK);
	for (unsigned i = 0; i < 5; i++)
		mem_reuse_free(big[i]);
	/* the 5000-byte block is still kept: 4 * 64 KiB + its class passes the cap */
	test_mem_expect(mem_reuse_cached() == ua + 3 * TEST_MEM_MAX_BLOCK, "bytes kept within the cap",
			mem_reuse_cached(), ua + 3 * TEST_MEM_MAX_BLOCK);
	void *again[5];
	for (unsigned i = 0; i < 5; i++)
		again[i] = mem_reuse_alloc(TEST_MEM_MAX_BLOCK);
	/* the three kept come back first, the last freed first */
	test_mem_expect(again[0] == big[2] && again[1] == big[1] && again[2] == big[0], "64 KiB blocks from the cache",
			again[0] == big[2] && again[1] == big[1] && again[2] == big[0], 1);
	for (unsigned i = 0; i < 5; i++)
		mem_reuse_free(again[i]);
	void *c = mem_reuse_alloc(5000);
	test_mem_expect(c == a, "the small block still kept", c == a, 1);
	mem_free(c);

	/* while the lock is held, neither function waits or uses the cache */
	void *d = mem_reuse_alloc(300);
	mem_reuse_free(d);
	size_t held = mem_reuse_cached();
	mem_fork_prepare();
	void *e = mem_reuse_alloc(300);
	test_mem_expect(e != d, "no block from a busy cache", e == d, 0);
	mem_reuse_free(e); /* to jemalloc */
	mem_fork_parent();
	test_mem_expect(mem_reuse_cached() == held, "nothing kept by a busy cache", mem_reuse_cached(), held);
	void *f = mem_reuse_alloc(300);
	test_mem_expect(f == d, "the cache after its lock is released", f == d, 1);
	mem_free(f);

	if (test_mem_failures) {
		fprintf(stderr, "%u failures\n", test_mem_failures);
		return 1;
	}
	printf("ok   test_mem (%u size classes up to 64 KiB)\n", nc);
	return 0;
}
