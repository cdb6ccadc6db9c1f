/* Between python.c (what every CPython version shares: attaching, the public API calls,
 * the end of the main program) and python_walk.c, which reads one minor version's
 * interpreter structures (frames, thread states, code objects) and is compiled once per
 * supported version against that version's internal headers, each copy exporting one
 * python_variant_t (python_variant_311, _312, ...). python_attach picks the copy whose
 * version is the running interpreter's (Py_GetVersion). */
#ifndef MEMPROF_PRELOAD_PYTHON_VARIANT_H
#define MEMPROF_PRELOAD_PYTHON_VARIANT_H

#include <Python.h>

#include "python.h"
#include "record.h"

/* CPython's public API, looked up in the process (the same in every supported version). */
typedef struct python_api {
	const char *(*GetVersion)(void);
	PyThreadState *(*GILStateGet)(void);
	int (*IsInitialized)(void);
	int (*AddPendingCall)(int (*)(void *), void *);
	PyObject *(*ImportModule)(const char *);
	PyObject *(*GetModule)(PyObject *);
	PyObject *(*UnicodeFromString)(const char *);
	PyObject *(*LongFromUnsignedLong)(unsigned long);
	unsigned long (*ThreadIdent)(void);
	int (*IsTrue)(PyObject *);
	PyObject *(*GetAttrString)(PyObject *, const char *);
	PyObject *(*CFunctionNewEx)(PyMethodDef *, PyObject *, PyObject *);
	PyObject *(*CallArgs)(PyObject *, ...); /* PyObject_CallFunctionObjArgs */
	void (*IncRef)(PyObject *);
	void (*DecRef)(PyObject *);
	PyObject *None;
	void (*ErrClear)(void);
	void (*GetAllocator)(PyMemAllocatorDomain, PyMemAllocatorEx *);
	void (*SetAllocator)(PyMemAllocatorDomain, PyMemAllocatorEx *);
} python_api_t;

extern python_api_t python_api;

/* MEMPROF_TEST_SLOW_CODE_US=N (tests only): each new code object's capture holds the
 * lock of the code table N microseconds (< 1 s) longer, so that a signal lands there. */
extern long python_test_slow_code_us;

typedef struct python_variant {
	const char *version; /* "3.11": the interpreters it reads are 3.11.x */
	/* Looks up what the walk needs of the interpreter (its private symbols) and starts
	 * watching code objects die; the name of a missing symbol, or NULL. */
	const char *(*attach)(bool mixed);
	uint32_t (*stack)(mp_thread_t *t, bool gil, bool native, uintptr_t ra, uintptr_t fp);
	void *(*alloc_gil)(void *ctx, void *(*malloc_fn)(void *, size_t), void *(*calloc_fn)(void *, size_t, size_t),
			   size_t n, size_t size, int allocator);
	pycode_rec_t *(*take_new_code)(void);
	void (*fork_child)(void);
	const char *(*allocator_name)(void); /* the allocators in place ("pymalloc"), or NULL */
} python_variant_t;

/* python_alloc_gil's body, with the version's walk (stack_gil: python_stack(t, true,
 * false, 0, 0)) inlined into it: each python_walk.c makes its own. The guard is held across
 * the real allocator and the recording: one entry and exit of this function for both. */
static inline __attribute__((always_inline)) void *
python_alloc_gil_with(void *ctx, void *(*malloc_fn)(void *, size_t), void *(*calloc_fn)(void *, size_t, size_t),
		      size_t n, size_t size, int allocator, uint32_t (*stack_gil)(mp_thread_t *t))
{
	int guard = mp_guard;
	mp_guard_enter();
	void *p = calloc_fn ? calloc_fn(ctx, n, size) : malloc_fn(ctx, size);
	if (mp_likely(p) && mp_likely(!guard) && mp_likely(atomic_load_explicit(&mp_recording, memory_order_relaxed))) {
		mp_thread_t *t = thread_get();
		if (mp_likely(t->cap)) {
			uint32_t stack = 0;
			if (mp_likely(python_active)) {
				if (mp_unlikely(!python_scheduled))
					python_maybe_schedule(false); /* the GIL wrappers are memprof's */
				stack = stack_gil(t);
			}
			record_put_gil(t, p, calloc_fn ? n * size : size, stack, MP_EV_ALLOC, allocator);
		}
	}
	mp_unguard();
	return p;
}

#endif
