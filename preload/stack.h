/* The stack tree: every stack is interned in-process into nodes (parent, frame) so an
 * event carries one integer. A new node is queued for the writer the first time it is
 * seen. Lookups go through a per-thread direct-mapped cache and a per-thread copy of
 * the previous stack (consecutive allocations share most of their stack), and only then
 * through the global table, which takes a mutex. */
#ifndef MEMPROF_PRELOAD_STACK_H
#define MEMPROF_PRELOAD_STACK_H
#include "mp.h"

#include <stdint.h>

#define STACK_MAX_FRAMES 256

typedef struct stack_cache stack_cache_t;

typedef struct stack_node_rec {
	uint32_t id, parent;
	uint64_t frame;
} stack_node_rec_t;

int stack_init(void);
stack_cache_t *stack_cache_new(void);
void stack_cache_free(stack_cache_t *c);

/* Interns frames[0..n) given outermost first below node `parent` (0: the root);
 * returns the node id (`parent` for n == 0), or 0 after an internal failure. The prefix
 * shared with the previous call below the same parent costs no lookup. */
uint32_t stack_intern(stack_cache_t *c, uint32_t parent, const uint64_t *frames, unsigned n);

/* stack_child's look-up beyond the thread's cache. */
uint32_t stack_child_slow(stack_cache_t *c, uint32_t parent, uint64_t frame);

/* The per-thread direct-mapped cache (parent, frame) -> id: 1,024 entries (16 KiB),
 * doubled each time the thread has looked up, in the global table, twice as many nodes
 * that were there already (misses a larger cache would have answered) as the cache has
 * entries, up to 16,384 (256 KiB). Black formatting one large file (233,000 nodes, 6.5
 * million allocations) missed 1.49 million times in 1,024 entries, 0.45 million so (each
 * miss a look in the global table under its lock, most often two cache misses there);
 * py_json 131,600 -> 13,500 (its cache grows once); py_threads' threads keep 1,024. */
#define STACK_CACHE_MIN 1024
#define STACK_CACHE_MAX 16384
#define STACK_CACHE_GROW 2

typedef struct stack_cache_entry {
	uint64_t frame;
	uint32_t parent, id;
} stack_cache_entry_t;

struct stack_cache {
	uint32_t generation;
	unsigned prev_n;
	uint32_t prev_parent; /* the node the previous frames were interned below */
	uint32_t mask;        /* entries in the cache, - 1 */
	uint32_t misses;      /* since the cache last grew */
	stack_cache_entry_t *entries;
	uint64_t prev_frames[STACK_MAX_FRAMES];
	uint32_t prev_ids[STACK_MAX_FRAMES];
};

static inline uint64_t stack_hash(uint32_t parent, uint64_t frame)
{
	uint64_t h = frame * 0x9E3779B97F4A7C15ull ^ ((uint64_t)parent * 0xC2B2AE3D27D4EB4Full);
	return h ^ (h >> 29);
}

/* The child of node `parent` for `frame` (one step of stack_intern). 0 on failure. */
static inline uint32_t stack_child(stack_cache_t *c, uint32_t parent, uint64_t frame)
{
	stack_cache_entry_t *e = &c->entries[stack_hash(parent, frame) & c->mask];
	if (mp_likely(e->id && e->parent == parent && e->frame == frame))
		return e->id;
	return stack_child_slow(c, parent, frame);
}

/* Takes the nodes created since the last call (writer). Returns the count; *out is
 * freed by the caller with mem_free. */
unsigned stack_take_new(stack_node_rec_t **out);

void stack_fork_prepare(void);
void stack_fork_parent(void);
/* The child starts an empty tree (its file is new); callers drop their caches. */
void stack_fork_child(void);

#endif
