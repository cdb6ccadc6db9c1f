/* locate: which source location a stack is reported under.
 *
 * A stack with Python frames goes to its innermost Python frame (with a focus path, the
 * innermost one whose file lies under it, when there is one). A native-only stack goes
 * to its innermost frame with file:line outside the allocator plumbing (libc, the loader,
 * libmemprof, jemalloc, libstdc++, libgcc_s); failing that to the innermost frame outside
 * those shown as function + module; failing that to its innermost frame.
 * Locations are interned: equal (file, line, function) give equal ids.
 */
#ifndef MEMPROF_ANALYZER_LOCATE_H
#define MEMPROF_ANALYZER_LOCATE_H

#include <stdint.h>

#include "db.h"

typedef struct locate locate_t;

typedef struct locate_loc {
	const char *file;
	int line; /* 0 = unknown or not applicable */
	const char *function;
} locate_loc_t;

/* focus: a path prefix (file or directory) or NULL. */
locate_t *locate_new(const db_t *db, const char *focus);
void locate_free(locate_t *l);
/* Whether a Python frame of the profile is under the focus path. */
bool locate_focus_matched(const locate_t *l);
/* With a focus path, the node of the stack's innermost Python frame under it (the
 * stack cut there: what it called, outside the focus, left out); else, and for a stack
 * with no frame under it, the node itself. */
uint32_t locate_focus_node(const locate_t *l, uint32_t node);
/* Location id of a stack node (memoized; symbolizes each distinct ip once). */
uint32_t locate_stack(locate_t *l, uint32_t node);
/* Interns a location; strings are copied. */
uint32_t locate_intern(locate_t *l, const char *file, int line, const char *function);
const locate_loc_t *locate_get(const locate_t *l, uint32_t id);
uint32_t locate_count(const locate_t *l);

/* What the truncation marker (format.h) reads as: frames of the stack were left out
 * there (outside it, or between the Python frames and the native ones below it). */
#define LOCATE_TRUNCATED "[frames not recorded]"

/* One frame of a stack, innermost first, for commands that print whole stacks. */
typedef struct locate_frame {
	const char *function;
	const char *file;
	int line;
	const char *module; /* native frames; NULL for Python */
	int python;
	int truncated; /* the truncation marker: frames were not recorded there (function says so) */
} locate_frame_t;
/* Calls fn for each frame of node's stack, innermost first (inlined frames included). */
void locate_walk(locate_t *l, uint32_t node, void (*fn)(void *arg, const locate_frame_t *f),
		 void *arg);
/* Calls fn for the frames of node itself (not its callers), innermost first: one for a
 * Python frame, one or more (inlined functions) for a native one. */
void locate_node_frames(locate_t *l, uint32_t node, void (*fn)(void *arg, const locate_frame_t *f),
			void *arg);

#endif
