/* The core every hook calls: stamp, capture the stack, append the event. The hooks
 * (hooks_libc.c, hooks_pymem.c) are thin wrappers that call the real function and then
 * one of these, or, for a free, one of these first. Callers check mp_should_record(). */
#ifndef MEMPROF_PRELOAD_RECORD_H
#define MEMPROF_PRELOAD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern unsigned record_max_depth;
extern bool record_native;

void record_alloc(void *p, size_t size, int allocator);
/* A free stamped at `ts` (taken before the real free ran), or RECORD_TS_GIL for a free
 * made with the GIL held (PyMem MEM/OBJ domains). */
#define RECORD_TS_GIL 0
void record_free(void *p, uint64_t ts);
/* A successful realloc: the free of `old` stamped at ts_free, then the new block. */
void record_realloc(void *old, uint64_t ts_free, void *p, size_t size, int allocator);
/* The Python main program finished ("end of program"). */
void record_end(void);

#endif
