/* Checks preload/stack.c, the interned stack tree, and each thread's cache in front of
 * it: every (parent, frame) gets one id, the same from every cache and after a cache
 * grows (its entries placed by the larger mask); a cache grows only while it misses
 * nodes that already were in the global table (a thread that makes new nodes, or that
 * uses few that fit, keeps its 16 KiB), up to STACK_CACHE_MAX; and the writer is handed each new
 * node once, with its parent and frame. memprof's private allocator and its failure
 * report are stood in for by calloc and a counter. */
#include "mem.h"
#include "stack.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned test_stack_failures, test_stack_fails_reported;

void *mem_alloc(size_t size)
{
	return calloc(1, size ? size : 1);
}

void *mem_realloc(void *p, size_t size)
{
	return realloc(p, size ? size : 1);
}

void mem_free(void *p)
{
	free(p);
}

void mp_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	test_stack_fails_reported++;
}

static void test_stack_expect(int ok, const char *what, unsigned long got, unsigned long want)
{
	if (!ok) {
		fprintf(stderr, "FAIL %s: got %lu, want %lu\n", what, got, want);
		test_stack_failures++;
	}
}

#define N_NODES 60000u

static uint32_t parents[N_NODES + 1], ids[N_NODES + 1];

/* Node i's frame: distinct for every i, and the same frame under many parents. */
static uint64_t test_stack_frame(unsigned i)
{
	return 0x400000u + (uint64_t)(i % 4099) * 16u;
}

int main(void)
{
	if (stack_init() < 0) {
		fprintf(stderr, "stack_init failed\n");
		return 1;
	}
	stack_cache_t *maker = stack_cache_new(), *user = stack_cache_new(), *small = stack_cache_new();
	if (!maker || !user || !small) {
		fprintf(stderr, "stack_cache_new failed\n");
		return 1;
	}

	/* Nodes made once each: chains of 50 frames, each under the one before. */
	for (unsigned i = 1; i <= N_NODES; i++) {
		parents[i] = i % 50 == 1 ? 0 : ids[i - 1];
		ids[i] = stack_child(maker, parents[i], test_stack_frame(i));
		test_stack_expect(ids[i] == i, "id of a new node (ids count up from 1)", ids[i], i);
	}
	test_stack_expect(maker->mask + 1 == STACK_CACHE_MIN, "cache of a thread that only made nodes",
			  maker->mask + 1, STACK_CACHE_MIN);

	/* Another thread looks them all up, over and over: every look-up is the node's id,
	 * and its cache grows (each growth after 2x its entries found-misses) to the most. */
	for (unsigned pass = 0; pass < 4; pass++)
		for (unsigned i = 1; i <= N_NODES; i++) {
			uint32_t id = stack_child(user, parents[i], test_stack_frame(i));
			if (id != ids[i]) {
				test_stack_expect(0, "id looked up through a growing cache", id, ids[i]);
				break;
			}
		}
	test_stack_expect(user->mask + 1 == STACK_CACHE_MAX, "cache of a thread missing often", user->mask + 1,
			  STACK_CACHE_MAX);
	/* the grown cache answers from its entries: a node just looked up is there */
	stack_cache_entry_t *e = &user->entries[stack_hash(parents[N_NODES], test_stack_frame(N_NODES)) & user->mask];
	test_stack_expect(e->id == ids[N_NODES] && e->parent == parents[N_NODES] &&
				  e->frame == test_stack_frame(N_NODES),
			  "the last node in the grown cache's entry", e->id, ids[N_NODES]);

	/* A thread whose stacks fit its cache (200 nodes, no two in one entry of 1,024),
	 * looked up 100,000 times, keeps 1,024 entries. */
	unsigned few[200], nfew = 0;
	unsigned char taken[STACK_CACHE_MIN] = {0};
	for (unsigned i = 1; i <= N_NODES && nfew < 200; i++) {
		unsigned slot = (unsigned)(stack_hash(parents[i], test_stack_frame(i)) & (STACK_CACHE_MIN - 1));
		if (!taken[slot]) {
			taken[slot] = 1;
			few[nfew++] = i;
		}
	}
	for (unsigned r = 0; r < 100000; r++) {
		unsigned i = few[(r * 7919u) % nfew];
		uint32_t id = stack_child(small, parents[i], test_stack_frame(i));
		if (id != ids[i]) {
			test_stack_expect(0, "id through a small cache", id, ids[i]);
			break;
		}
	}
	test_stack_expect(small->mask + 1 == STACK_CACHE_MIN, "cache of a thread whose stacks fit it",
			  small->mask + 1, STACK_CACHE_MIN);
	test_stack_expect(small->misses == nfew, "its misses (one for each node)", small->misses, nfew);

	/* stack_intern: a whole stack under the root, then again with its innermost frame
	 * moved: the shared prefix gives the same nodes. */
	uint64_t frames[3] = {test_stack_frame(1), test_stack_frame(2), 0x999990};
	uint32_t a = stack_intern(small, 0, frames, 3);
	test_stack_expect(stack_child(user, ids[2], 0x999990) == a, "stack_intern's node", a, a);
	frames[2] = 0x999980;
	uint32_t b = stack_intern(small, 0, frames, 3);
	test_stack_expect(b == a + 1, "stack_intern's node for a moved frame (one new node)", b, a + 1);

	/* The writer is handed every node once, as made. */
	stack_node_rec_t *recs;
	unsigned n = stack_take_new(&recs);
	test_stack_expect(n == N_NODES + 2, "new nodes handed to the writer", n, N_NODES + 2);
	for (unsigned k = 0; k < n && k < N_NODES; k++)
		if (recs[k].id != ids[k + 1] || recs[k].parent != parents[k + 1] ||
		    recs[k].frame != test_stack_frame(k + 1)) {
			test_stack_expect(0, "node record", recs[k].id, ids[k + 1]);
			break;
		}
	mem_free(recs);
	test_stack_expect(stack_take_new(&recs) == 0, "nodes handed twice", 1, 0);
	mem_free(recs);
	test_stack_expect(test_stack_fails_reported == 0, "failures reported", test_stack_fails_reported, 0);

	stack_cache_free(maker);
	stack_cache_free(user);
	stack_cache_free(small);
	if (test_stack_failures) {
		fprintf(stderr, "%u failures\n", test_stack_failures);
		return 1;
	}
	printf("ok: %u nodes, a cache grown to %u entries, one kept at %u\n", N_NODES, (unsigned)STACK_CACHE_MAX,
	       (unsigned)STACK_CACHE_MIN);
	return 0;
}
