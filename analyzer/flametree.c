/* flametree: see flametree.h.
 *
 * Stack nodes come parent first (a parent's id is smaller), so one walk in id order maps
 * every stack node to a tree node: its parent's tree node, extended by the node's frames
 * outermost first (a native frame with inlined functions is several). Only stack nodes
 * on the path of a stack with a non-zero metric are visited, so unused native frames are
 * never symbolized. Tree children are found through a hash map keyed by (parent, label),
 * labels are interned; each distinct stack node costs a few hash lookups.
 */
#include "flametree.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrmap.h"

struct flametree {
	flame_node_t *nodes;
	uint32_t n, cap;
	char **labels;
	uint32_t n_labels, cap_labels;
	uint32_t *label_ht; /* label id + 1, 0 = empty */
	size_t label_mask;
	addrmap_t children; /* parent << 32 | label -> a = node */
	/* scratch for one stack node's frames */
	uint32_t *frames;
	uint8_t *frame_kinds;
	size_t n_frames, cap_frames;
};

static void *flametree_grow(void *p, uint32_t *cap, size_t size)
{
	*cap = *cap ? 2 * *cap : 1024;
	void *n = realloc(p, (size_t)*cap * size);
	if (!n)
		abort();
	return n;
}

static uint64_t flametree_hash(const char *s)
{
	uint64_t h = UINT64_C(1469598103934665603);
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * UINT64_C(1099511628211);
	return h ^ (h >> 31);
}

static void flametree_ht_put(flametree_t *t, uint32_t id)
{
	size_t i = (size_t)flametree_hash(t->labels[id]) & t->label_mask;
	while (t->label_ht[i])
		i = (i + 1) & t->label_mask;
	t->label_ht[i] = id + 1;
}

/* Interns a label. */
static uint32_t flametree_intern(flametree_t *t, const char *s)
{
	size_t i = (size_t)flametree_hash(s) & t->label_mask;
	for (; t->label_ht[i]; i = (i + 1) & t->label_mask)
		if (strcmp(t->labels[t->label_ht[i] - 1], s) == 0)
			return t->label_ht[i] - 1;
	if (t->n_labels == t->cap_labels)
		t->labels = flametree_grow(t->labels, &t->cap_labels, sizeof *t->labels);
	uint32_t id = t->n_labels++;
	char *copy = strdup(s);
	if (!copy)
		abort();
	t->labels[id] = copy;
	if (2 * (size_t)t->n_labels > t->label_mask + 1) {
		free(t->label_ht);
		t->label_mask = 2 * t->label_mask + 1;
		t->label_ht = calloc(t->label_mask + 1, sizeof *t->label_ht);
		if (!t->label_ht)
			abort();
		for (uint32_t k = 0; k < t->n_labels; k++)
			flametree_ht_put(t, k);
	} else {
		t->label_ht[i] = id + 1;
	}
	return id;
}

static const char *flametree_basename(const char *path)
{
	const char *b = path ? strrchr(path, '/') : NULL;
	return b ? b + 1 : path;
}

/* Collects one frame's label; control characters become spaces so that every output
 * can use labels as they are (the folded format's writer turns a ';' into ','). */
static void flametree_frame(void *arg, const locate_frame_t *f)
{
	flametree_t *t = arg;
	uint32_t label;
	char buf[4096];
	if (f->truncated) {
		snprintf(buf, sizeof buf, "%s", f->function);
	} else if (f->python) {
		if (f->line > 0)
			snprintf(buf, sizeof buf, "%s:%d %s", f->file ? f->file : "?", f->line, f->function);
		else
			snprintf(buf, sizeof buf, "%s %s", f->file ? f->file : "?", f->function);
	} else if (f->file && f->line > 0) {
		snprintf(buf, sizeof buf, "%s (%s:%d)", f->function, f->file, f->line);
	} else {
		snprintf(buf, sizeof buf, "%s (%s)", f->function,
			 f->module ? flametree_basename(f->module) : "??");
	}
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = ' ';
	label = flametree_intern(t, buf);
	if (t->n_frames == t->cap_frames) {
		uint32_t cap = (uint32_t)t->cap_frames;
		t->frames = flametree_grow(t->frames, &cap, sizeof *t->frames);
		t->frame_kinds = realloc(t->frame_kinds, cap);
		if (!t->frame_kinds)
			abort();
		t->cap_frames = cap;
	}
	t->frame_kinds[t->n_frames] = f->truncated ? FLAME_OTHER : f->python ? FLAME_PYTHON : FLAME_NATIVE;
	t->frames[t->n_frames++] = label;
}

static uint32_t flametree_child(flametree_t *t, uint32_t parent, uint32_t label, uint8_t kind)
{
	uint64_t key = (uint64_t)parent << 32 | label;
	addrmap_entry_t *e = addrmap_get(&t->children, key);
	if (e)
		return e->a;
	if (t->n == t->cap)
		t->nodes = flametree_grow(t->nodes, &t->cap, sizeof *t->nodes);
	uint32_t id = t->n++;
	t->nodes[id] = (flame_node_t){.label = label, .parent = parent, .depth = t->nodes[parent].depth + 1,
				      .kind = kind};
	if (addrmap_put(&t->children, key, id, 0, NULL) < 0)
		abort();
	return id;
}

static uint64_t flametree_weight(const pass_stack_t *s, flame_metric_t metric)
{
	switch (metric) {
	case FLAME_ALLOCATED: return s->allocated_bytes;
	case FLAME_END: return s->end_bytes;
	case FLAME_LEAKED: return s->live_bytes;
	default: return s->peak_bytes;
	}
}

static const flametree_t *flametree_sort_tree;

static int flametree_cmp(const void *pa, const void *pb)
{
	const flame_node_t *n = flametree_sort_tree->nodes;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	if (n[a].parent != n[b].parent)
		return n[a].parent < n[b].parent ? -1 : 1;
	return strcmp(flametree_sort_tree->labels[n[a].label], flametree_sort_tree->labels[n[b].label]);
}

flametree_t *flametree_new(void)
{
	flametree_t *t = calloc(1, sizeof *t);
	if (!t || addrmap_init(&t->children, 1024)) {
		flametree_free(t);
		return NULL;
	}
	t->label_mask = 1023;
	t->label_ht = calloc(t->label_mask + 1, sizeof *t->label_ht);
	if (!t->label_ht)
		abort();
	t->n = 1;
	t->cap = 1024;
	t->nodes = calloc(t->cap, sizeof *t->nodes);
	if (!t->nodes)
		abort();
	t->nodes[0] = (flame_node_t){.label = flametree_intern(t, "all"), .kind = FLAME_ROOT};
	return t;
}

int flametree_add(flametree_t *t, profile_t *p, flame_metric_t metric)
{
	const db_t *db = &p->db;
	const pass_t *ps = &p->pass;
	uint32_t n_nodes = db->n_nodes ? db->n_nodes : 1;
	uint8_t *needed = calloc(n_nodes, 1);
	uint32_t *tnode = calloc(n_nodes, sizeof *tnode);
	if (!needed || !tnode) {
		free(needed);
		free(tnode);
		return -1;
	}
	/* the stack nodes on the way to a weighted stack */
	for (uint32_t s = 1; s < ps->n_stacks && s < db->n_nodes; s++) {
		if (!flametree_weight(pass_stack(ps, s), metric))
			continue;
		for (uint32_t m = s; m && !needed[m] && db->nodes[m].present; m = db->nodes[m].parent)
			needed[m] = 1;
	}
	for (uint32_t i = 1; i < db->n_nodes; i++) {
		if (!needed[i])
			continue;
		t->n_frames = 0;
		locate_node_frames(p->locate, i, flametree_frame, t);
		uint32_t cur = tnode[db->nodes[i].parent];
		for (size_t k = t->n_frames; k-- > 0;)
			cur = flametree_child(t, cur, t->frames[k], t->frame_kinds[k]);
		tnode[i] = cur;
	}
	for (uint32_t s = 0; s < ps->n_stacks; s++) {
		uint64_t w = flametree_weight(pass_stack(ps, s), metric);
		if (!w)
			continue;
		uint32_t at;
		if (s == 0)
			at = flametree_child(t, 0, flametree_intern(t, "<no stack>"), FLAME_OTHER);
		else if (s >= db->n_nodes || !db->nodes[s].present)
			at = flametree_child(t, 0, flametree_intern(t, "<unknown stack>"), FLAME_OTHER);
		else
			at = tnode[s];
		t->nodes[at].self += w;
	}
	free(needed);
	free(tnode);
	return 0;
}

void flametree_finish(flametree_t *t)
{
	/* children are created after their parents: sum from the leaves up */
	for (uint32_t i = t->n; i-- > 0;) {
		t->nodes[i].total += t->nodes[i].self;
		if (i)
			t->nodes[t->nodes[i].parent].total += t->nodes[i].total;
	}
	/* child lists in label order */
	uint32_t *order = malloc((size_t)t->n * sizeof *order);
	if (!order)
		abort();
	for (uint32_t i = 1; i < t->n; i++)
		order[i - 1] = i;
	flametree_sort_tree = t;
	qsort(order, t->n - 1, sizeof *order, flametree_cmp);
	for (uint32_t k = t->n - 1; k-- > 0;) {
		flame_node_t *c = &t->nodes[order[k]];
		c->sibling = t->nodes[c->parent].child;
		t->nodes[c->parent].child = order[k];
	}
	free(order);
}

flametree_t *flametree_build(profile_t *p, flame_metric_t metric)
{
	flametree_t *t = flametree_new();
	if (t && flametree_add(t, p, metric)) {
		flametree_free(t);
		return NULL;
	}
	if (t)
		flametree_finish(t);
	return t;
}

void flametree_free(flametree_t *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->n_labels; i++)
		free(t->labels[i]);
	free(t->labels);
	free(t->label_ht);
	free(t->nodes);
	free(t->frames);
	free(t->frame_kinds);
	addrmap_free(&t->children);
	free(t);
}

const flame_node_t *flametree_nodes(const flametree_t *t, uint32_t *n)
{
	*n = t->n;
	return t->nodes;
}

const char *flametree_label(const flametree_t *t, uint32_t label)
{
	return t->labels[label];
}
