/* addrmap: see addrmap.h. Fibonacci hashing takes the high bits of key * 2^64/phi,
 * which spreads 16-byte-aligned heap addresses well. Load factor stays <= 1/2. */
#include "addrmap.h"

#include <stdlib.h>
#include <sys/mman.h>

/* Tables of ADDRMAP_HUGE bytes and more get a mapping of their own, aligned to and advised
 * for transparent huge pages: the live map of a large profile is hundreds of MB probed at
 * random, one page fault and most often one TLB miss per 4 KiB page touched otherwise
 * (py_json's capture: 66,800 page faults, 97% of them in this table, and 0.55 s of
 * `memprof report`'s 2.9 s in the kernel on this project's VM). */
#define ADDRMAP_HUGE ((size_t)2 << 20)

static void addrmap_release(addrmap_entry_t *slots, size_t mapped)
{
	if (mapped)
		munmap(slots, mapped);
	else
		free(slots);
}

static int addrmap_alloc(addrmap_t *m, unsigned bits)
{
	size_t bytes = ((size_t)1 << bits) * sizeof *m->slots;
	m->mapped = 0;
	if (bytes >= ADDRMAP_HUGE) {
		/* mapped with ADDRMAP_HUGE to spare, then trimmed to an aligned start */
		size_t len = bytes + ADDRMAP_HUGE;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -1;
		char *start = (char *)(((uintptr_t)p + ADDRMAP_HUGE - 1) & ~(uintptr_t)(ADDRMAP_HUGE - 1));
		if (start > p)
			munmap(p, (size_t)(start - p));
		if (start + bytes < p + len)
			munmap(start + bytes, (size_t)(p + len - (start + bytes)));
		madvise(start, bytes, MADV_HUGEPAGE); /* a hint: without THP, 4 KiB pages */
		m->slots = (addrmap_entry_t *)(void *)start;
		m->mapped = bytes;
	} else {
		m->slots = calloc((size_t)1 << bits, sizeof *m->slots);
		if (!m->slots)
			return -1;
	}
	m->mask = ((size_t)1 << bits) - 1;
	m->shift = 64 - bits;
	m->count = 0;
	return 0;
}

int addrmap_init(addrmap_t *m, size_t capacity_hint)
{
	unsigned bits = 4;
	while (((size_t)1 << bits) < 2 * capacity_hint)
		bits++;
	m->has_zero = false;
	return addrmap_alloc(m, bits);
}

void addrmap_free(addrmap_t *m)
{
	addrmap_release(m->slots, m->mapped);
	m->slots = NULL;
}

static int addrmap_grow(addrmap_t *m)
{
	addrmap_t old = *m;
	if (addrmap_alloc(m, 64 - old.shift + 1)) {
		*m = old;
		return -1;
	}
	for (size_t i = 0; i <= old.mask; i++) {
		if (!old.slots[i].key)
			continue;
		size_t j = addrmap_home(m, old.slots[i].key);
		while (m->slots[j].key)
			j = (j + 1) & m->mask;
		m->slots[j] = old.slots[i];
	}
	m->count = old.count;
	addrmap_release(old.slots, old.mapped);
	return 0;
}

addrmap_entry_t *addrmap_get(addrmap_t *m, uint64_t key)
{
	if (!key)
		return m->has_zero ? &m->zero : NULL;
	for (size_t i = addrmap_home(m, key);; i = (i + 1) & m->mask) {
		addrmap_entry_t *e = &m->slots[i];
		if (e->key == key)
			return e;
		if (!e->key)
			return NULL;
	}
}

int addrmap_put(addrmap_t *m, uint64_t key, uint32_t a, uint32_t b, addrmap_entry_t *old)
{
	if (!key) {
		int had = m->has_zero;
		if (had && old)
			*old = m->zero;
		m->zero = (addrmap_entry_t){0, a, b};
		m->has_zero = true;
		return had;
	}
	for (size_t i = addrmap_home(m, key);; i = (i + 1) & m->mask) {
		addrmap_entry_t *e = &m->slots[i];
		if (e->key == key) {
			if (old)
				*old = *e;
			e->a = a;
			e->b = b;
			return 1;
		}
		if (!e->key) {
			if (2 * (m->count + 1) > m->mask + 1) {
				if (addrmap_grow(m))
					return -1;
				return addrmap_put(m, key, a, b, old);
			}
			*e = (addrmap_entry_t){key, a, b};
			m->count++;
			return 0;
		}
	}
}

bool addrmap_take(addrmap_t *m, uint64_t key, addrmap_entry_t *out)
{
	if (!key) {
		if (!m->has_zero)
			return false;
		if (out)
			*out = m->zero;
		m->has_zero = false;
		return true;
	}
	size_t i = addrmap_home(m, key);
	for (;; i = (i + 1) & m->mask) {
		if (m->slots[i].key == key)
			break;
		if (!m->slots[i].key)
			return false;
	}
	if (out)
		*out = m->slots[i];
	/* Backward shift: pull later members of the probe run into the hole unless their home
	 * slot lies cyclically in (hole, j]. */
	size_t j = i;
	for (;;) {
		j = (j + 1) & m->mask;
		uint64_t kj = m->slots[j].key;
		if (!kj)
			break;
		size_t k = addrmap_home(m, kj);
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		m->slots[i] = m->slots[j];
		i = j;
	}
	m->slots[i].key = 0;
	m->count--;
	return true;
}
