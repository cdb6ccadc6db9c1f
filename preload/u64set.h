/* A set of nonzero 64-bit values (addresses, hashes): open addressing with linear
 * probing, at most half full, grown on memprof's private memory. Not thread-safe: the
 * caller locks. A zeroed u64set_t is an empty set. */
#ifndef MEMPROF_PRELOAD_U64SET_H
#define MEMPROF_PRELOAD_U64SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct u64set {
	uint64_t *v; /* cap slots, 0 = empty */
	size_t cap;  /* a power of two, or 0 */
	size_t n;
} u64set_t;

bool u64set_has(const u64set_t *s, uint64_t x);
/* 1: added; 0: there already; -1: no memory to grow. */
int u64set_add(u64set_t *s, uint64_t x);
/* True if x was there (and is not any more). */
bool u64set_remove(u64set_t *s, uint64_t x);

#endif
