/* The interned stack tree (see stack.h). */
#include "stack.h"
#include "mem.h"
#include "mp.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

/* The global table: an open-addressing hash of node ids (4 bytes a slot, at most 3/4
 * full), the nodes themselves indexed by id (12 bytes a node: a probe of a large table
 * reads one line of it, not one of a parents array and one of a frames array), in
 * segments of STACK_SEG nodes that stay where they are. (One array grown by doubling was
 * copied each time: black's worker with mixed stacks, 1.27 million nodes, held the old
 * 12 MB and the new array's copy at once, a moment its peak RSS counted.) */
typedef struct __attribute__((packed)) stack_node {
	uint64_t frame;
	uint32_t parent;
} stack_node_t;

#define STACK_SEG_BITS 15 /* 32,768 nodes, 384 KiB, a segment */
#define STACK_SEG (1u << STACK_SEG_BITS)

static pthread_mutex_t stack_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *stack_table; /* slot -> node id, 0: empty */
static size_t stack_cap, stack_count;
static stack_node_t *stack_segs[1u << (32 - STACK_SEG_BITS)]; /* by id >> STACK_SEG_BITS */
static size_t stack_nodes_cap; /* ids below this have room in the segments */
static uint32_t stack_next_id = 1;
static stack_node_rec_t *stack_new_recs;
static unsigned stack_new_n, stack_new_cap;
/* Bumped in a forked child: caches of another generation are stale. */
static atomic_uint stack_generation;

static inline stack_node_t *stack_node(uint32_t id)
{
	return &stack_segs[id >> STACK_SEG_BITS][id & (STACK_SEG - 1)];
}

int stack_init(void)
{
	stack_cap = 1 << 12;
	stack_table = mem_alloc(stack_cap * sizeof *stack_table);
	return stack_table ? 0 : -1;
}

stack_cache_t *stack_cache_new(void)
{
	stack_cache_t *c = mem_alloc(sizeof *c);
	if (!c)
		return NULL;
	c->entries = mem_alloc(STACK_CACHE_MIN * sizeof *c->entries);
	if (!c->entries) {
		mem_free(c);
		return NULL;
	}
	c->mask = STACK_CACHE_MIN - 1;
	c->generation = atomic_load(&stack_generation);
	return c;
}

void stack_cache_free(stack_cache_t *c)
{
	if (c)
		mem_free(c->entries);
	mem_free(c);
}

/* Doubles the thread's cache (see STACK_CACHE_MIN), empty: its entries are found again
 * in the global table as they are used. Left as it is when memory is short. */
static void stack_cache_grow(stack_cache_t *c)
{
	size_t n = ((size_t)c->mask + 1) * 2;
	stack_cache_entry_t *e = mem_alloc(n * sizeof *e);
	c->misses = 0;
	if (!e)
		return;
	mem_free(c->entries);
	c->entries = e;
	c->mask = (uint32_t)n - 1;
}

static void stack_place(uint32_t *table, size_t cap, uint32_t id)
{
	const stack_node_t *n = stack_node(id);
	size_t j = stack_hash(n->parent, n->frame) & (cap - 1);
	while (table[j])
		j = (j + 1) & (cap - 1);
	table[j] = id;
}

static int stack_grow(void)
{
	size_t ncap = stack_cap * 2;
	uint32_t *nt = mem_alloc(ncap * sizeof *nt);
	if (!nt)
		return -1;
	for (size_t i = 0; i < stack_cap; i++)
		if (stack_table[i])
			stack_place(nt, ncap, stack_table[i]);
	mem_free(stack_table);
	stack_table = nt;
	stack_cap = ncap;
	return 0;
}

static int stack_grow_nodes(void)
{
	size_t k = stack_nodes_cap >> STACK_SEG_BITS;
	if (k >= sizeof stack_segs / sizeof *stack_segs)
		return -1;
	if (!stack_segs[k] && !(stack_segs[k] = mem_alloc(STACK_SEG * sizeof(stack_node_t))))
		return -1;
	stack_nodes_cap += STACK_SEG;
	return 0;
}

/* Global lookup or insert; called with stack_lock held. */
static uint32_t stack_global(uint32_t parent, uint64_t frame)
{
	size_t i = stack_hash(parent, frame) & (stack_cap - 1);
	for (uint32_t id; (id = stack_table[i]); i = (i + 1) & (stack_cap - 1)) {
		const stack_node_t *n = stack_node(id);
		if (n->parent == parent && n->frame == frame)
			return id;
	}
	if ((stack_count + 1) * 4 > stack_cap * 3) {
		if (stack_grow() < 0)
			return 0;
		return stack_global(parent, frame);
	}
	if (stack_next_id >= stack_nodes_cap && stack_grow_nodes() < 0)
		return 0;
	if (stack_new_n == stack_new_cap) {
		unsigned ncap = stack_new_cap ? stack_new_cap * 2 : 1024;
		stack_node_rec_t *nr = mem_realloc(stack_new_recs, ncap * sizeof *nr);
		if (!nr)
			return 0;
		stack_new_recs = nr;
		stack_new_cap = ncap;
	}
	uint32_t id = stack_next_id++;
	*stack_node(id) = (stack_node_t){.frame = frame, .parent = parent};
	stack_table[i] = id;
	stack_count++;
	stack_new_recs[stack_new_n++] = (stack_node_rec_t){id, parent, frame};
	return id;
}

uint32_t stack_child_slow(stack_cache_t *c, uint32_t parent, uint64_t frame)
{
	int saved = errno;
	pthread_mutex_lock(&stack_lock);
	uint32_t before = stack_next_id, id = stack_global(parent, frame);
	bool found = stack_next_id == before; /* already made: a miss a larger cache could have answered */
	pthread_mutex_unlock(&stack_lock);
	if (!id) {
		mp_fail("out of memory for the stack table");
		errno = saved;
		return 0;
	}
	if (found && mp_unlikely(++c->misses >= STACK_CACHE_GROW * (c->mask + 1)) && c->mask + 1 < STACK_CACHE_MAX)
		stack_cache_grow(c);
	errno = saved;
	stack_cache_entry_t *e = &c->entries[stack_hash(parent, frame) & c->mask];
	e->parent = parent;
	e->frame = frame;
	e->id = id;
	return id;
}

uint32_t stack_intern(stack_cache_t *c, uint32_t parent, const uint64_t *frames, unsigned n)
{
	unsigned g = atomic_load_explicit(&stack_generation, memory_order_relaxed);
	if (mp_unlikely(c->generation != g)) {
		memset(c->entries, 0, ((size_t)c->mask + 1) * sizeof *c->entries);
		c->prev_n = 0;
		c->generation = g;
	}
	if (n > STACK_MAX_FRAMES)
		n = STACK_MAX_FRAMES;
	unsigned i = 0;
	unsigned lim = c->prev_parent != parent ? 0 : n < c->prev_n ? n : c->prev_n;
	while (i < lim && c->prev_frames[i] == frames[i])
		i++;
	c->prev_parent = parent;
	uint32_t id = i ? c->prev_ids[i - 1] : parent;
	for (; i < n; i++) {
		id = stack_child(c, id, frames[i]);
		if (!id) {
			c->prev_n = 0;
			return 0;
		}
		c->prev_frames[i] = frames[i];
		c->prev_ids[i] = id;
	}
	c->prev_n = n;
	return id;
}

unsigned stack_take_new(stack_node_rec_t **out)
{
	pthread_mutex_lock(&stack_lock);
	unsigned n = stack_new_n;
	*out = stack_new_recs;
	stack_new_recs = NULL;
	stack_new_n = stack_new_cap = 0;
	pthread_mutex_unlock(&stack_lock);
	return n;
}

void stack_fork_prepare(void)
{
	pthread_mutex_lock(&stack_lock);
}

void stack_fork_parent(void)
{
	pthread_mutex_unlock(&stack_lock);
}

void stack_fork_child(void)
{
	pthread_mutex_init(&stack_lock, NULL);
	memset(stack_table, 0, stack_cap * sizeof *stack_table);
	stack_count = 0;
	stack_next_id = 1;
	mem_free(stack_new_recs);
	stack_new_recs = NULL;
	stack_new_n = stack_new_cap = 0;
	atomic_fetch_add(&stack_generation, 1);
}
