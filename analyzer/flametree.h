/* flametree: the stacks of a profile merged into one tree of frames, weighted by a
 * metric, for flame graphs. Frames are labelled the way people read them: Python
 * `file:line function`, native `function (file:line)` or `function (module)`; equal
 * labels under the same parent are one node, so a line reached through different
 * instructions, or the same call path recorded as different stack nodes, adds up. */
#ifndef MEMPROF_ANALYZER_FLAMETREE_H
#define MEMPROF_ANALYZER_FLAMETREE_H

#include <stdint.h>

#include "profile.h"

typedef enum { FLAME_PEAK, FLAME_ALLOCATED, FLAME_END, FLAME_LEAKED } flame_metric_t;

typedef enum { FLAME_ROOT, FLAME_PYTHON, FLAME_NATIVE, FLAME_OTHER } flame_kind_t;

typedef struct flame_node {
	uint32_t label;      /* flametree_label() */
	uint32_t parent;     /* node 0 is the root, its own parent */
	uint32_t child;      /* first child in label order, 0 = none */
	uint32_t sibling;    /* next sibling in label order, 0 = none */
	uint32_t depth;      /* root 0 */
	uint8_t kind;        /* flame_kind_t */
	uint64_t self;       /* metric of the stacks ending here */
	uint64_t total;      /* self + children */
} flame_node_t;

typedef struct flametree flametree_t;

/* Builds the tree of the stacks with a non-zero metric. NULL when out of memory. */
flametree_t *flametree_build(profile_t *p, flame_metric_t metric);
/* The same in steps, for several profiles in one tree (equal labels under equal parents
 * are one node, whichever profile they come from): an empty tree (NULL when out of
 * memory), each profile's stacks added (-1 when out of memory), then finished (totals,
 * child order) before it is read. */
flametree_t *flametree_new(void);
int flametree_add(flametree_t *t, profile_t *p, flame_metric_t metric);
void flametree_finish(flametree_t *t);
void flametree_free(flametree_t *t);
const flame_node_t *flametree_nodes(const flametree_t *t, uint32_t *n);
const char *flametree_label(const flametree_t *t, uint32_t label);

#endif
