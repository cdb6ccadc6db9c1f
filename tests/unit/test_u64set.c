/* Checks preload/u64set.c against a plain array: random adds and removes of values
 * drawn from a small range (so that runs of colliding slots form and backward-shift
 * deletion has entries to move), across several growths; after every step each value of
 * the range is in the set exactly when the array says so, and the count agrees. Values
 * are addresses 16 bytes apart, as the sampled blocks' spill set holds. */
#include "mem.h"
#include "u64set.h"
#include "unit_rand.h"

#include <stdio.h>

#define TEST_U64SET_RANGE 3000

int main(void)
{
	if (mem_init() < 0) {
		fprintf(stderr, "FAIL mem_init\n");
		return 1;
	}
	static bool in[TEST_U64SET_RANGE];
	u64set_t s = {0};
	size_t n = 0;
	unsigned failures = 0;
	uint64_t rng = 0x1234567887654321ull;
	for (unsigned step = 0; step < 200000 && failures < 10; step++) {
		unsigned k = (unsigned)(unit_rand(&rng) % TEST_U64SET_RANGE);
		uint64_t x = 0x7f0000001000ull + (uint64_t)k * 16;
		if (unit_rand(&rng) % 3) { /* adds outnumber removes: the set grows */
			int r = u64set_add(&s, x);
			if (r != (in[k] ? 0 : 1)) {
				fprintf(stderr, "FAIL step %u: add of %u gave %d, in the set: %d\n", step, k, r, in[k]);
				failures++;
			}
			n += !in[k];
			in[k] = true;
		} else {
			bool r = u64set_remove(&s, x);
			if (r != in[k]) {
				fprintf(stderr, "FAIL step %u: remove of %u gave %d, in the set: %d\n", step, k, r, in[k]);
				failures++;
			}
			n -= in[k];
			in[k] = false;
		}
		if (s.n != n) {
			fprintf(stderr, "FAIL step %u: count %zu, want %zu\n", step, s.n, n);
			failures++;
		}
		if (step % 997 == 0)
			for (unsigned j = 0; j < TEST_U64SET_RANGE; j++)
				if (u64set_has(&s, 0x7f0000001000ull + (uint64_t)j * 16) != in[j]) {
					fprintf(stderr, "FAIL step %u: value %u in the set: %d, want %d\n", step, j, !in[j],
						in[j]);
					failures++;
				}
	}
	if (s.cap < 2 * s.n || s.cap < 256) {
		fprintf(stderr, "FAIL capacity %zu for %zu values\n", s.cap, s.n);
		failures++;
	}
	if (failures)
		return 1;
	printf("ok: %zu values in %zu slots\n", s.n, s.cap);
	return 0;
}
