/* See u64set.h. */
#include "u64set.h"
#include "mem.h"

static size_t u64set_home(const u64set_t *s, uint64_t x)
{
	return (size_t)((x >> 4) * 0x9E3779B97F4A7C15ull >> 20) & (s->cap - 1);
}

/* The slot of x, or of the empty slot where it would go (cap > 0). */
static size_t u64set_find(const u64set_t *s, uint64_t x)
{
	size_t i = u64set_home(s, x);
	while (s->v[i] && s->v[i] != x)
		i = (i + 1) & (s->cap - 1);
	return i;
}

bool u64set_has(const u64set_t *s, uint64_t x)
{
	return s->cap && s->v[u64set_find(s, x)] == x;
}

static bool u64set_grow(u64set_t *s)
{
	u64set_t g = {mem_alloc((s->cap ? s->cap * 2 : 256) * sizeof *g.v), s->cap ? s->cap * 2 : 256, s->n};
	if (!g.v)
		return false;
	for (size_t i = 0; i < s->cap; i++)
		if (s->v[i])
			g.v[u64set_find(&g, s->v[i])] = s->v[i];
	mem_free(s->v);
	*s = g;
	return true;
}

int u64set_add(u64set_t *s, uint64_t x)
{
	if ((s->n + 1) * 2 > s->cap && !u64set_grow(s))
		return -1;
	size_t i = u64set_find(s, x);
	if (s->v[i])
		return 0;
	s->v[i] = x;
	s->n++;
	return 1;
}

/* Backward-shift deletion: the entries after it in its run move up where their home
 * allows. */
bool u64set_remove(u64set_t *s, uint64_t x)
{
	if (!s->cap)
		return false;
	size_t i = u64set_find(s, x), mask = s->cap - 1;
	if (!s->v[i])
		return false;
	s->n--;
	for (size_t j = (i + 1) & mask; s->v[j]; j = (j + 1) & mask) {
		size_t h = u64set_home(s, s->v[j]);
		/* the entry at j may move to i if its home is not in (i, j] */
		if (((j - h) & mask) >= ((j - i) & mask)) {
			s->v[i] = s->v[j];
			i = j;
		}
	}
	s->v[i] = 0;
	return true;
}
