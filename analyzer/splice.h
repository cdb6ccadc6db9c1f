/* Spliced native chains (memprof/format.h, MP_FRAME_CHAINS): the capture interns the
 * native frames between the eval loop and the allocator once as a chain of their own
 * and refers to it from one node below each Python stack that runs it. This expands them
 * when a profile is opened, so that the rest of the analyzer sees one stack tree of
 * plain frames. */
#ifndef MEMPROF_ANALYZER_SPLICE_H
#define MEMPROF_ANALYZER_SPLICE_H

#include "db.h"

/* Rebuilds db->nodes with every splice replaced by the frames of its chain and the
 * chains themselves left out, equal (parent, frame) pairs made one node (a stack the
 * capture spliced and the same stack it interned frame by frame are one), ids renumbered
 * so that a parent still comes before its children; db->stack_remap then maps the ids
 * the events carry to the new ones. Nothing changes when the file has no splices.
 * Returns 0, or -1 with db->err set (a splice of no chain: a damaged file). */
int splice_expand(db_t *db);

#endif
