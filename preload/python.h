/* CPython support: attach to the interpreter when the process is CPython, hook the
 * PyMem RAW/MEM/OBJ domains (hooks_pymem.c), walk the calling thread's Python frames
 * without allocating or locking, and capture each code object's identity and line table
 * once so that line numbers are resolved offline, never on the program's threads.
 *
 * Version handling: the frame walk reads interpreter structures, whose layout changes
 * with every minor version, so it is compiled against that version's internal headers.
 * This build carries the 3.11 walker; any other version is refused at start-up with one
 * line on stderr, and the program runs untouched (no hooks, no file). Adding 3.9/3.10/3.12/3.13 means one more walker compiled against their
 * headers and chosen at run time from Py_GetVersion(). */
#ifndef MEMPROF_PRELOAD_PYTHON_H
#define MEMPROF_PRELOAD_PYTHON_H

#include "thread.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Python frames and native+Python (mixed) stacks. */
extern bool python_active;

/* Detects CPython in the process. Returns 1 if this is a supported CPython (and hooks
 * were installed), 0 if not Python, -1 if an unsupported Python (said on stderr). */
int python_attach(bool mixed);
/* True if the symbols of a CPython interpreter are present (any version). */
bool python_present(void);
/* Interned stack of the calling thread; `gil` is true when the caller holds the GIL
 * (PyMem MEM/OBJ domains). With `native`, native frames are captured too and the
 * Python frames spliced in where the interpreter's eval loop runs them; `ra` and `fp`
 * tell where the hook was called from (RECORD_CALLER, for unwind.h), or are 0. */
uint32_t python_stack(mp_thread_t *t, bool gil, bool native, uintptr_t ra, uintptr_t fp);
/* python_stack(t, true, false, 0, 0), with the walk inlined into it (record_alloc_gil). */
uint32_t python_stack_gil(mp_thread_t *t);
/* Called by the hooks until the atexit callback is registered. `recheck` (the hooks
 * other than memprof's own wrappers of the GIL domains): before the interpreter is
 * initialized, wrap again the allocators start-up replaced (python_hooks_recheck). */
void python_maybe_schedule(bool recheck);
extern bool python_scheduled;

typedef struct pycode_rec {
	uint32_t id;
	int firstlineno;
	char *filename, *name, *qualname;
	unsigned char *linetable;
	size_t linetable_len;
	struct pycode_rec *next;
} pycode_rec_t;

pycode_rec_t *python_take_new_code(void);
void python_code_rec_free(pycode_rec_t *r);
const char *python_version(void);
void python_fork_child(void);

#endif
