/* Expansion of spliced native chains (see splice.h). One pass over the nodes in id
 * order (a node's parent comes first): a chain node is set aside, a splice becomes its
 * chain's frames below the splice's parent, any other node its own frame below its
 * parent; native frames through a map of (new parent, frame) to new id. */
#include "splice.h"
#include "hugemem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memprof/format.h"

/* A chain longer than this is a damaged file: the capture splices chains of at most 33
 * frames (preload/unwind.h). It also bounds what a file can expand to: 64 nodes a row. */
#define SPLICE_MAX_CHAIN 64

typedef struct splice_slot {
	uint64_t frame;
	uint32_t parent;
	uint32_t id; /* 0: empty */
} splice_slot_t;

typedef struct splice_tree {
	db_node_t *nodes; /* the new nodes, by new id */
	uint32_t n, cap;
	splice_slot_t *map; /* open addressing, power-of-two size, at most half full */
	size_t map_size;
} splice_tree_t;

static size_t splice_hash(uint32_t parent, uint64_t frame)
{
	uint64_t h = frame * 0x9E3779B97F4A7C15ull ^ ((uint64_t)parent * 0xC2B2AE3D27D4EB4Full);
	return (size_t)(h ^ (h >> 29));
}

static bool splice_map_grow(splice_tree_t *t)
{
	size_t size = t->map_size ? t->map_size * 2 : 4096;
	splice_slot_t *map = hugemem_calloc(size, sizeof *map);
	if (!map)
		return false;
	for (size_t i = 0; i < t->map_size; i++) {
		splice_slot_t *s = &t->map[i];
		if (!s->id)
			continue;
		size_t j = splice_hash(s->parent, s->frame) & (size - 1);
		while (map[j].id)
			j = (j + 1) & (size - 1);
		map[j] = *s;
	}
	hugemem_free(t->map, t->map_size, sizeof *t->map);
	t->map = map;
	t->map_size = size;
	return true;
}

/* A new node; 0 when memory ran out. */
static uint32_t splice_append(splice_tree_t *t, uint32_t parent, uint64_t frame)
{
	if (t->n == t->cap) {
		if (t->cap >= UINT32_MAX / 2)
			return 0;
		uint32_t cap = t->cap * 2;
		db_node_t *nodes = realloc(t->nodes, (size_t)cap * sizeof *nodes);
		if (!nodes)
			return 0;
		t->nodes = nodes;
		t->cap = cap;
	}
	t->nodes[t->n] = (db_node_t){.frame = frame, .parent = parent, .present = true};
	return t->n++;
}

/* The new node for native frame below new node parent, made if it is not there yet; 0
 * when memory ran out. Only native frames can meet twice below one parent (a chain's
 * and the same frames interned one by one), so only they go through the map. */
static uint32_t splice_child(splice_tree_t *t, uint32_t parent, uint64_t frame)
{
	if ((size_t)(t->n + 1) * 2 > t->map_size && !splice_map_grow(t))
		return 0;
	size_t i = splice_hash(parent, frame) & (t->map_size - 1);
	for (; t->map[i].id; i = (i + 1) & (t->map_size - 1))
		if (t->map[i].parent == parent && t->map[i].frame == frame)
			return t->map[i].id;
	uint32_t id = splice_append(t, parent, frame);
	if (id)
		t->map[i] = (splice_slot_t){.frame = frame, .parent = parent, .id = id};
	return id;
}

static bool splice_any(const db_t *db)
{
	for (uint32_t i = 1; i < db->n_nodes; i++)
		if (db->nodes[i].present && (mp_frame_is_splice(db->nodes[i].frame) || db->nodes[i].frame == MP_FRAME_CHAINS))
			return true;
	return false;
}

int splice_expand(db_t *db)
{
	if (!splice_any(db))
		return 0;
	uint32_t n = db->n_nodes;
	splice_tree_t t = {.cap = n + 1024};
	uint32_t *remap = calloc(n, sizeof *remap);
	bool *chain = calloc(n, sizeof *chain);
	/* per chain node: the new node of its frames below new node memo_parent, the last
	 * time they were expanded there (splices below one parent share long prefixes) */
	uint32_t *memo_parent = calloc(n, sizeof *memo_parent), *memo_node = calloc(n, sizeof *memo_node);
	uint32_t *path = malloc((SPLICE_MAX_CHAIN + 1) * sizeof *path);
	t.nodes = malloc((size_t)t.cap * sizeof *t.nodes);
	const char *bad = NULL; /* damage found; else out of memory unless done */
	bool done = false;
	if (!remap || !chain || !memo_parent || !memo_node || !path || !t.nodes)
		goto out;
	t.nodes[0] = (db_node_t){0};
	t.n = 1;
	/* the map sized once for about as many native nodes as the file has nodes */
	while (t.map_size < 2 * (size_t)n)
		if (!splice_map_grow(&t))
			goto out;
	for (uint32_t i = 1; i < n; i++) {
		const db_node_t *o = &db->nodes[i];
		remap[i] = UINT32_MAX; /* an event that names it is counted as of an unknown stack */
		if (!o->present)
			continue;
		if (o->frame == MP_FRAME_CHAINS || chain[o->parent]) {
			if (o->frame == MP_FRAME_CHAINS ? o->parent != 0 : mp_frame_is_splice(o->frame)) {
				bad = "a chain node out of place";
				break;
			}
			chain[i] = true;
			continue;
		}
		uint32_t parent = remap[o->parent] == UINT32_MAX ? 0 : remap[o->parent], cur;
		if (mp_frame_is_splice(o->frame)) {
			uint32_t c = mp_frame_splice_node(o->frame), k = 0;
			if (c >= i || !db->nodes[c].present || !chain[c] || db->nodes[c].frame == MP_FRAME_CHAINS) {
				bad = "a splice of no chain";
				break;
			}
			if (parent == 0) {
				/* below the root: the frames of a chain are never a whole stack */
				bad = "a splice below the root";
				break;
			}
			/* up the chain to where it was expanded below this parent last time, or to
			 * its start; then down again, making (or finding) each frame's node */
			for (; db->nodes[c].frame != MP_FRAME_CHAINS && k <= SPLICE_MAX_CHAIN; c = db->nodes[c].parent) {
				if (memo_parent[c] == parent && memo_node[c])
					break;
				path[k++] = c;
			}
			if (k > SPLICE_MAX_CHAIN) {
				bad = "a chain too long";
				break;
			}
			cur = db->nodes[c].frame == MP_FRAME_CHAINS ? parent : memo_node[c];
			while (k > 0 && cur) {
				c = path[--k];
				cur = splice_child(&t, cur, db->nodes[c].frame);
				memo_parent[c] = parent;
				memo_node[c] = cur;
			}
		} else if (o->frame & MP_FRAME_PYTHON) {
			cur = splice_append(&t, parent, o->frame);
		} else {
			cur = splice_child(&t, parent, o->frame);
		}
		if (!cur)
			goto out;
		remap[i] = cur;
	}
	done = !bad;
out:
	free(chain);
	free(memo_parent);
	free(memo_node);
	free(path);
	hugemem_free(t.map, t.map_size, sizeof *t.map);
	if (!done) {
		free(remap);
		free(t.nodes);
		return bad ? db_fail(db, "corrupt stack_nodes table (%s)", bad) : db_fail(db, "out of memory");
	}
	free(db->nodes);
	db->nodes = t.nodes;
	db->n_nodes = t.n;
	db->stack_remap = remap;
	db->n_stack_remap = n;
	return 0;
}
