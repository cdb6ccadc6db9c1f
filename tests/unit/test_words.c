/* Checks the word stream that carries events from a program's thread to the writer
 * (preload/thread.h): every event thread_append writes, thread_decode reads back equal,
 * over 2,000,000 random events that mix allocations and frees, reused and fresh
 * timestamps, addresses and sizes at and beyond what the narrow form holds (2^56, 2^32),
 * stack ids up to 2^32 - 1 and block boundaries (the block-full path is this test's
 * own: it decodes the block and starts the next one, as the writer would). */
#include "thread.h"
#include "unit_rand.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* thread_append's prefetch of the line ahead on, as where the CPU has PREFETCHW (its
 * address stays within the block: thread_block_t's room past the end) */
bool thread_prefetchw = true;
static thread_block_t test_words_block;
static mp_event_t *test_words_want;
static size_t test_words_next; /* next event of test_words_want to compare */
static uint64_t test_words_ts;
static unsigned long test_words_checks, test_words_failures, test_words_blocks;

static void test_words_check_block(mp_thread_t *t)
{
	for (unsigned i = 0; i < t->n;) {
		mp_event_t got;
		i += thread_decode(&t->cur->w[i], &test_words_ts, &got);
		const mp_event_t *w = &test_words_want[test_words_next++];
		test_words_checks++;
		if (got.ts != w->ts || got.addr != w->addr || got.size != w->size || got.stack != w->stack ||
		    got.kind != w->kind || got.allocator != w->allocator) {
			if (test_words_failures++ < 10)
				fprintf(stderr,
					"event %zu: got kind %u al %u ts %" PRIu64 " addr %#" PRIx64 " size %" PRIu64
					" stack %u; want kind %u al %u ts %" PRIu64 " addr %#" PRIx64 " size %" PRIu64
					" stack %u\n",
					test_words_next - 1, got.kind, got.allocator, got.ts, got.addr, got.size,
					got.stack, w->kind, w->allocator, w->ts, w->addr, w->size, w->stack);
		}
	}
}

/* The writer's side of a full block, for this test. */
bool thread_block_full(mp_thread_t *t)
{
	if (t->n > t->cap + THREAD_EVENT_MAX_WORDS || t->n <= t->cap) {
		test_words_failures++;
		fprintf(stderr, "block sealed at %u words (limit %u)\n", t->n, t->cap);
	}
	test_words_check_block(t);
	test_words_blocks++;
	memset(t->cur->w, 0xa5, sizeof t->cur->w);
	t->n = 0;
	return false;
}

static uint64_t test_words_rng = 0x9E3779B97F4A7C15ull;
static uint64_t test_words_rand(void)
{
	return unit_rand(&test_words_rng);
}

int main(void)
{
	enum { N = 2000000 };
	test_words_want = calloc(N, sizeof *test_words_want);
	if (!test_words_want)
		return 1;
	mp_thread_t t = {.cur = &test_words_block, .cap = THREAD_BLOCK_WORDS - THREAD_EVENT_MAX_WORDS};
	uint64_t ts = 1000;
	for (size_t i = 0; i < N; i++) {
		uint64_t r = test_words_rand();
		mp_event_t *e = &test_words_want[i];
		if (r % 4 == 0)
			ts += test_words_rand() % 100000; /* otherwise the previous stamp again */
		e->ts = ts;
		uint64_t addr = 0x7f0000000000ull + (test_words_rand() & 0xffffff0ull);
		switch (r >> 8 & 15) {
		case 0: addr = 0; break;
		case 1: addr = 1ull << 56; break;
		case 2: addr = UINT64_MAX - 15; break;
		case 3: addr = (1ull << 56) - 16; break;
		}
		e->addr = addr;
		unsigned kind = (r >> 16) % 8 == 0 ? MP_EV_END : (r >> 16) % 2 ? MP_EV_ALLOC : MP_EV_FREE;
		e->kind = (uint8_t)kind;
		if (kind == MP_EV_ALLOC) {
			uint64_t size = test_words_rand() % 4096;
			switch (r >> 24 & 15) {
			case 0: size = 0; break;
			case 1: size = UINT32_MAX; break;
			case 2: size = 1ull << 32; break;
			case 3: size = UINT64_MAX; break;
			}
			e->size = size;
			e->stack = (r >> 32 & 7) == 0 ? UINT32_MAX : (uint32_t)(test_words_rand() % 100000);
			e->allocator = (uint8_t)((r >> 40) % MP_AL_COUNT);
		}
		thread_append(&t, e->ts, e->addr, e->size, e->stack, e->kind, e->allocator);
	}
	test_words_check_block(&t);
	if (test_words_next != N) {
		test_words_failures++;
		fprintf(stderr, "decoded %zu events, want %d\n", test_words_next, N);
	}
	if (test_words_blocks < 100) {
		test_words_failures++;
		fprintf(stderr, "only %lu blocks filled\n", test_words_blocks);
	}
	printf("test_words: %lu checks over %lu blocks, %lu failures\n", test_words_checks, test_words_blocks,
	       test_words_failures);
	free(test_words_want);
	return test_words_failures ? 1 : 0;
}
