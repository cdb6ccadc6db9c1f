/* The functions (subprograms, inlined subroutines, entry points) whose code holds an
 * address, from an index built once per compilation unit.
 *
 * libdw's dwarf_getscopes answers one address by walking the unit's DIE tree from the
 * top, and dwarf_getscopes_die walks it again for the parents: ~0.6 ms per address in
 * CPython's ceval.c, most of `memprof report`'s time on a mixed-mode capture with debug
 * info. The index holds the unit's DIEs that have address ranges, in the order those
 * walks visit them, with each one's subtree end and parent: an address is then answered
 * by a scan that skips every subtree not holding it. The answer is the one the two
 * calls give (the first path, in DIE order, of nested DIEs holding the address; the
 * innermost DIE's concrete parents), limited to the function DIEs, with one exception:
 * where an inlined function's abstract origin is in another unit (GCC -flto builds),
 * dwarf_getscopes fails and gave no chain at all; the index gives the chain. A unit
 * whose imported units import themselves gets no index, as libdw refuses it. */
#ifndef MEMPROF_ANALYZER_SCOPES_H
#define MEMPROF_ANALYZER_SCOPES_H

#include <elfutils/libdw.h>

typedef struct scopes scopes_t;

scopes_t *scopes_new(void);
/* The function DIEs holding pc (in the unit's own addresses) in the unit cudie,
 * innermost first, into *out (valid until the next call); their count, 0 if none (or
 * the index cannot be built). The Dwarf the unit belongs to must outlive the index. */
int scopes_at(scopes_t *x, Dwarf_Die *cudie, Dwarf_Addr pc, Dwarf_Die **out);
void scopes_free(scopes_t *x);

#endif
