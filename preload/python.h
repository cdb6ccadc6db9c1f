/* CPython support: attach to the interpreter when the process is CPython, hook the
 * PyMem RAW/MEM/OBJ domains (hooks_pymem.c), walk the calling thread's Python frames
 * without allocating or locking, and capture each code object's identity and line table
 * once so that line numbers are resolved offline, never on the program's threads.
 *
 * Version handling: the frame walk reads interpreter structures, whose layout changes
 * with every minor version, so it is compiled against that version's internal headers.
 * This build carries the 3.11 walker; any other version is refused at start-up with one
 * line on stderr and the program runs untouched by the Python hooks (native capture
 * still works). Adding 3.9/3.10/3.12/3.13 means one more walker compiled against their
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
 * Python frames spliced in where the interpreter's eval loop runs them. */
uint32_t python_stack(mp_thread_t *t, bool gil, bool native);
/* Called by the hooks (with the GIL) until the atexit callback is registered. */
void python_maybe_schedule(void);
extern bool python_scheduled;

typedef struct pycode_rec {
	uint32_t id;
	int firstlineno;
	char *filename, *name, *qualname;
	unsigned char *linetable;
	size_t linetable_len;
	struct pycode_rec *next;
} pycode_rec_t;

/* Code objects die, and a new one can be allocated at the same address, with its line
 * table and names at the addresses of the old one's: the code-id caches must forget a
 * code object when it is freed. The OBJ-domain free hook tests each freed pointer
 * against this bitmap of addresses of known code objects (a filter: false positives
 * only cost a look-up) and reports the known ones to python_code_freed(). */
#define PY_CODE_BITS (1u << 20)
extern _Atomic uint64_t python_code_bits[PY_CODE_BITS / 64];
void python_code_freed(const void *p);
static inline size_t python_code_bit(const void *p)
{
	return (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) >> 20) & (PY_CODE_BITS - 1);
}
static inline void python_code_free_check(const void *p)
{
	size_t b = python_code_bit(p);
	if (atomic_load_explicit(&python_code_bits[b / 64], memory_order_relaxed) & (1ull << (b % 64)))
		python_code_freed(p);
}

pycode_rec_t *python_take_new_code(void);
void python_code_rec_free(pycode_rec_t *r);
const char *python_version(void);
void python_fork_child(void);

#endif
