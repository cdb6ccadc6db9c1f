/* CPython support: attach to the interpreter when the process is CPython, hook the
 * PyMem RAW/MEM/OBJ domains (hooks_pymem.c), walk the calling thread's Python frames
 * without allocating or locking, and capture each code object's identity and line table
 * once so that line numbers are resolved offline, never on the program's threads.
 *
 * Version handling: the frame walk reads interpreter structures, whose layout changes
 * with every minor version, so python_walk.c is compiled once for each supported version
 * (3.9 to 3.13: those whose headers the build found) against that version's
 * internal headers, and python_attach picks the one for the running interpreter from
 * Py_GetVersion(). Any other version is refused at start-up with one line on stderr,
 * and the program runs untouched (no hooks, no file). */
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
 * tell where the hook was called from (RECORD_CALLER, for unwind.h), or are 0. The
 * running version's walk (python_attach sets the pointers). */
extern uint32_t (*python_stack_fn)(mp_thread_t *t, bool gil, bool native, uintptr_t ra, uintptr_t fp);
static inline uint32_t python_stack(mp_thread_t *t, bool gil, bool native, uintptr_t ra, uintptr_t fp)
{
	return python_stack_fn(t, gil, native, ra, fp);
}
/* The commonest event of a Python program, when record_gil_lean: an allocation of at
 * most RECORD_SMALL_REQUEST bytes from a domain that holds the GIL (PyMem MEM, OBJ),
 * with Python stacks alone, in exact mode. Calls the real allocator (calloc_fn(ctx, n,
 * size) if calloc_fn, else malloc_fn(ctx, size)) under the guard, records the block
 * (none of the checks those conditions answer) and returns it. The running version's
 * (python_attach sets it), with its walk inlined into it (python_alloc_gil_with). */
extern void *(*python_alloc_gil)(void *ctx, void *(*malloc_fn)(void *, size_t),
				 void *(*calloc_fn)(void *, size_t, size_t), size_t n, size_t size, int allocator);
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
