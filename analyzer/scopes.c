/* Function scopes of an address from a per-unit index (see scopes.h).
 *
 * What the index mirrors (elfutils' libdw_visit_scopes.c and dwarf_getscopes.c): the
 * walk visits a unit's children in order, the children of an imported unit (DWZ
 * partial units) in place of the DW_TAG_imported_unit DIE; a DIE that does not hold the
 * address is pruned (its subtree is not visited), and a DIE that holds it is descended
 * into when its kind can own scopes; the first DIE reached that holds the address and
 * has no descendant holding it is the innermost scope. Namespaces and class types can
 * own scopes but hold no address themselves, so the walk never enters them. So: the
 * index keeps the DIEs with address ranges, in visiting order, each with the end of its
 * subtree and its parent among them; DIEs without ranges (never matched) are left out
 * with their subtrees. */
#include "scopes.h"

#include <dwarf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Nesting deeper than this (malformed or hostile DWARF) is cut. */
#define SCOPES_MAX_DEPTH 256
/* Imported units inside imported units, followed at most this deep. */
#define SCOPES_MAX_IMPORTS 32
/* DIEs one unit's walk may visit (imported units count each time they are imported):
 * beyond it the unit gets no index (a unit of debug info crafted to import itself
 * under many names, say). */
#define SCOPES_MAX_VISITS (1u << 24)

typedef struct scopes_node {
	Dwarf_Die die;
	uint32_t end;              /* index after its subtree */
	int32_t parent;            /* index of the enclosing node, -1 for the unit's */
	uint32_t range, n_ranges;  /* its [lo, hi) pairs in the unit's ranges */
	bool function;             /* subprogram, inlined subroutine or entry point */
} scopes_node_t;

typedef struct scopes_unit {
	const void *key; /* the unit DIE's address in .debug_info; NULL: empty slot */
	scopes_node_t *nodes;
	uint32_t n_nodes, cap_nodes;
	Dwarf_Addr *ranges; /* pairs */
	uint32_t n_ranges, cap_ranges;
} scopes_unit_t;

struct scopes {
	scopes_unit_t *units; /* open addressing on key, power-of-two size */
	size_t size, used;
	Dwarf_Die *out;
	size_t cap_out;
};

scopes_t *scopes_new(void)
{
	return calloc(1, sizeof(scopes_t));
}

static size_t scopes_hash(const void *key)
{
	uint64_t h = (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull;
	return (size_t)(h ^ (h >> 31));
}

static bool scopes_grow_array(void **v, uint32_t *cap, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return true;
	if (need > UINT32_MAX / 2)
		return false;
	uint32_t ncap = *cap ? *cap : 64;
	while (ncap < need)
		ncap *= 2;
	void *nv = realloc(*v, (size_t)ncap * elem);
	if (!nv)
		return false;
	*v = nv;
	*cap = ncap;
	return true;
}

/* Kinds of DIE the walk descends into when they hold the address (libdw also enters
 * namespaces and class types, which never hold one: they are pruned before). */
static bool scopes_descends(int tag)
{
	switch (tag) {
	case DW_TAG_compile_unit:
	case DW_TAG_module:
	case DW_TAG_lexical_block:
	case DW_TAG_with_stmt:
	case DW_TAG_catch_block:
	case DW_TAG_try_block:
	case DW_TAG_entry_point:
	case DW_TAG_inlined_subroutine:
	case DW_TAG_subprogram:
		return true;
	default:
		return false;
	}
}

static bool scopes_is_function(int tag)
{
	return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine || tag == DW_TAG_entry_point;
}

typedef struct scopes_walk {
	const void *importing[SCOPES_MAX_IMPORTS]; /* the units being imported, outermost first */
	unsigned n_importing;
	uint32_t visits;
} scopes_walk_t;

/* Appends child and the DIEs after it (its siblings), with their subtrees, below
 * parent. False when memory ran out or the unit cannot be indexed (an imported unit
 * that imports itself, as libdw refuses it; too deep; too many DIEs). */
static bool scopes_add(scopes_unit_t *u, scopes_walk_t *w, Dwarf_Die child, int32_t parent, unsigned depth)
{
	if (depth > SCOPES_MAX_DEPTH)
		return true;
	do {
		if (++w->visits > SCOPES_MAX_VISITS)
			return false;
		int tag = dwarf_tag(&child);
		if (tag == DW_TAG_imported_unit) {
			/* its unit's children stand where it stands (libdw skips an imported
			 * compile unit, which some gcc -flto versions emit) */
			Dwarf_Attribute attr;
			Dwarf_Die unit, first;
			if (!dwarf_formref_die(dwarf_attr(&child, DW_AT_import, &attr), &unit) ||
			    dwarf_tag(&unit) == DW_TAG_compile_unit || dwarf_child(&unit, &first) != 0)
				continue;
			if (w->n_importing == SCOPES_MAX_IMPORTS)
				return false;
			for (unsigned k = 0; k < w->n_importing; k++)
				if (w->importing[k] == unit.addr)
					return false;
			w->importing[w->n_importing++] = unit.addr;
			bool ok = scopes_add(u, w, first, parent, depth);
			w->n_importing--;
			if (!ok)
				return false;
			continue;
		}
		uint32_t first_range = u->n_ranges;
		Dwarf_Addr base, lo, hi;
		for (ptrdiff_t off = 0; (off = dwarf_ranges(&child, off, &base, &lo, &hi)) > 0;) {
			if (!scopes_grow_array((void **)&u->ranges, &u->cap_ranges, u->n_ranges + 2,
					       sizeof *u->ranges))
				return false;
			u->ranges[u->n_ranges++] = lo;
			u->ranges[u->n_ranges++] = hi;
		}
		if (u->n_ranges == first_range)
			continue; /* holds no address: pruned with its subtree */
		if (!scopes_grow_array((void **)&u->nodes, &u->cap_nodes, u->n_nodes + 1, sizeof *u->nodes))
			return false;
		uint32_t self = u->n_nodes++;
		u->nodes[self] = (scopes_node_t){
			.die = child,
			.parent = parent,
			.range = first_range / 2,
			.n_ranges = (u->n_ranges - first_range) / 2,
			.function = scopes_is_function(tag),
		};
		Dwarf_Die grandchild;
		if (scopes_descends(tag) && dwarf_child(&child, &grandchild) == 0 &&
		    !scopes_add(u, w, grandchild, (int32_t)self, depth + 1))
			return false;
		u->nodes[self].end = u->n_nodes;
	} while (dwarf_siblingof(&child, &child) == 0);
	return true;
}

static void scopes_unit_clear(scopes_unit_t *u)
{
	free(u->nodes);
	free(u->ranges);
	memset(u, 0, sizeof *u);
}

/* The unit's index, built on first use; NULL when memory is short. */
static scopes_unit_t *scopes_unit(scopes_t *x, Dwarf_Die *cudie)
{
	const void *key = cudie->addr;
	if ((x->used + 1) * 2 > x->size) {
		size_t size = x->size ? x->size * 2 : 64;
		scopes_unit_t *units = calloc(size, sizeof *units);
		if (!units)
			return NULL;
		for (size_t i = 0; i < x->size; i++) {
			if (!x->units[i].key)
				continue;
			size_t j = scopes_hash(x->units[i].key) & (size - 1);
			while (units[j].key)
				j = (j + 1) & (size - 1);
			units[j] = x->units[i];
		}
		free(x->units);
		x->units = units;
		x->size = size;
	}
	size_t i = scopes_hash(key) & (x->size - 1);
	for (; x->units[i].key; i = (i + 1) & (x->size - 1))
		if (x->units[i].key == key)
			return &x->units[i];
	scopes_unit_t *u = &x->units[i];
	Dwarf_Die first;
	scopes_walk_t w = {.n_importing = 0};
	if (dwarf_child(cudie, &first) == 0 && !scopes_add(u, &w, first, -1, 0))
		scopes_unit_clear(u); /* kept empty: no function is found in it */
	u->key = key;
	x->used++;
	return u;
}

static bool scopes_holds(const scopes_unit_t *u, const scopes_node_t *n, Dwarf_Addr pc)
{
	const Dwarf_Addr *r = &u->ranges[2 * (size_t)n->range];
	for (uint32_t k = 0; k < n->n_ranges; k++)
		if (pc >= r[2 * k] && pc < r[2 * k + 1])
			return true;
	return false;
}

int scopes_at(scopes_t *x, Dwarf_Die *cudie, Dwarf_Addr pc, Dwarf_Die **out)
{
	scopes_unit_t *u = x ? scopes_unit(x, cudie) : NULL;
	if (!u)
		return 0;
	/* the first path of nested nodes holding pc: enter a node that holds it, skip the
	 * subtree of one that does not, and stop at the end of the last node entered */
	int32_t inner = -1;
	for (uint32_t i = 0, end = u->n_nodes; i < end;) {
		if (scopes_holds(u, &u->nodes[i], pc)) {
			inner = (int32_t)i;
			end = u->nodes[i].end;
			i++;
		} else {
			i = u->nodes[i].end;
		}
	}
	int n = 0;
	for (int32_t k = inner; k >= 0; k = u->nodes[k].parent) {
		if (!u->nodes[k].function)
			continue;
		if ((size_t)n == x->cap_out) {
			size_t cap = x->cap_out ? x->cap_out * 2 : 16;
			Dwarf_Die *o = realloc(x->out, cap * sizeof *o);
			if (!o)
				break;
			x->out = o;
			x->cap_out = cap;
		}
		x->out[n++] = u->nodes[k].die;
	}
	*out = x->out;
	return n;
}

void scopes_free(scopes_t *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->size; i++)
		if (x->units[i].key)
			scopes_unit_clear(&x->units[i]);
	free(x->units);
	free(x->out);
	free(x);
}
