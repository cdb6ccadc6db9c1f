/* addrmap: open-addressing hash map from a 64-bit key (an address, an ip) to two u32
 * values, 16 bytes a slot. Linear probing with backward-shift deletion, so removals leave
 * no tombstones and the table stays fast through tens of millions of alloc/free pairs.
 * Key 0 marks an empty slot; the key 0 itself lives outside the table. */
#ifndef MEMPROF_ANALYZER_ADDRMAP_H
#define MEMPROF_ANALYZER_ADDRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct addrmap_entry {
	uint64_t key;
	uint32_t a;
	uint32_t b;
} addrmap_entry_t;

typedef struct addrmap {
	addrmap_entry_t *slots;
	size_t mask; /* capacity - 1, capacity a power of two */
	size_t count;
	unsigned shift;
	bool has_zero;
	addrmap_entry_t zero;
} addrmap_t;

int addrmap_init(addrmap_t *m, size_t capacity_hint);
void addrmap_free(addrmap_t *m);
/* Inserts or replaces. If the key was present, its previous value goes to *old and the
 * return is 1; otherwise 0. -1 on allocation failure. */
int addrmap_put(addrmap_t *m, uint64_t key, uint32_t a, uint32_t b, addrmap_entry_t *old);
/* Removes key; returns true and its value in *out if it was present. */
bool addrmap_take(addrmap_t *m, uint64_t key, addrmap_entry_t *out);
/* Pointer to the entry for key, or NULL. Valid until the next put/take. */
addrmap_entry_t *addrmap_get(addrmap_t *m, uint64_t key);

static inline size_t addrmap_home(const addrmap_t *m, uint64_t key)
{
	return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> m->shift);
}

/* Hint that key will be looked up soon (the pass runs a few events ahead). */
static inline void addrmap_prefetch(const addrmap_t *m, uint64_t key)
{
	__builtin_prefetch(&m->slots[addrmap_home(m, key)]);
}

#endif
