/* Wrappers around CPython's PyMem allocator domains (see hooks_pymem.c). */
#ifndef MEMPROF_PRELOAD_HOOKS_PYMEM_H
#define MEMPROF_PRELOAD_HOOKS_PYMEM_H

#include <Python.h>

typedef void (*hooks_pymem_get_t)(PyMemAllocatorDomain, PyMemAllocatorEx *);
typedef void (*hooks_pymem_set_t)(PyMemAllocatorDomain, PyMemAllocatorEx *);

/* Wraps the allocators in place of the RAW, MEM and OBJ domains; `name` names them
 * (python_variant_t.allocator_name), `gil` is PyGILState_Check (either may be NULL). */
void python_hooks_install(hooks_pymem_get_t get, hooks_pymem_set_t set, const char *(*name)(void),
			  int (*gil)(void));
/* Wraps the arena allocator so that the arenas' mappings are not recorded as the
 * program's (PyObject_GetArenaAllocator, PyObject_SetArenaAllocator; NULL: left alone). */
void python_hooks_arena(void (*get)(PyObjectArenaAllocator *), void (*set)(PyObjectArenaAllocator *));
/* Wraps again any domain whose allocator start-up replaced (PYTHONMALLOC, -X dev). */
void python_hooks_ensure(void);
/* Start-up: wraps again at once a domain whose allocator was replaced since last seen. */
void python_hooks_recheck(void);

#endif
