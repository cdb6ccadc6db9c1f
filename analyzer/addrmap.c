/* addrmap: see addrmap.h. Fibonacci hashing takes the high bits of key * 2^64/phi,
 * which spreads 16-byte-aligned heap addresses well. Load factor stays <= 3/4: a probe
 * still reads one or two lines of four slots, and the live map of py_json's capture
 * (2.9 million blocks at its peak) is 64 MB instead of 128 MB (`memprof report` 208 ->
 * 110 MB, 2.20 -> 2.08 s, medians of 6 alternating runs). */
#include "addrmap.h"

#include "hugemem.h"

/* The live map of a large profile is hundreds of MB probed at random: huge pages
 * (py_json's capture: 66,819 -> 2,172 page faults, `memprof report` 2.9 -> 1.2-1.6 s on
 * this project's VM). */
static int addrmap_alloc(addrmap_t *m, unsigned bits)
{
	m->slots = hugemem_calloc((size_t)1 << bits, sizeof *m->slots);
	if (!m->slots)
		return -1;
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
	hugemem_free(m->slots, m->mask + 1, sizeof *m->slots);
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
	hugemem_free(old.slots, old.mask + 1, sizeof *old.slots);
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
			if (4 * (m->count + 1) > 3 * (m->mask + 1)) {
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
