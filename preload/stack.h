/* The stack tree: every stack is interned in-process into nodes (parent, frame) so an
 * event carries one integer. A new node is queued for the writer the first time it is
 * seen. Lookups go through a per-thread direct-mapped cache and a per-thread copy of
 * the previous stack (consecutive allocations share most of their stack), and only then
 * through the global table, which takes a mutex. */
#ifndef MEMPROF_PRELOAD_STACK_H
#define MEMPROF_PRELOAD_STACK_H

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

/* Interns frames[0..n) given outermost first; returns the node id (0 for n == 0),
 * or 0 after an internal failure. */
uint32_t stack_intern(stack_cache_t *c, const uint64_t *frames, unsigned n);

/* The child of node `parent` for `frame` (one step of stack_intern). 0 on failure. */
uint32_t stack_child(stack_cache_t *c, uint32_t parent, uint64_t frame);

/* Takes the nodes created since the last call (writer). Returns the count; *out is
 * freed by the caller with mem_free. */
unsigned stack_take_new(stack_node_rec_t **out);

void stack_fork_prepare(void);
void stack_fork_parent(void);
/* The child starts an empty tree (its file is new); callers drop their caches. */
void stack_fork_child(void);

#endif
