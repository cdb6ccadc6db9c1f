/* Memory the program maps itself (hooks_mmap.c). */
#ifndef MEMPROF_PRELOAD_HOOKS_MMAP_H
#define MEMPROF_PRELOAD_HOOKS_MMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Before recording starts: the page size, and where the allocator serving malloc is. */
void maps_init(void);
/* A mapping a program's signal handler made (stack: not RECORD_NO_STACK) or unmapped
 * (RECORD_NO_STACK) at `when` while its thread was inside memprof (record.c's stash), put
 * in the table and the stream now, stamped ts (not earlier than the thread's newest
 * stamp). The caller holds mp_guard. */
void maps_replay(void *p, size_t len, uint64_t when, uint64_t ts, uint32_t stack);
/* The calling thread holds the table's lock. */
bool maps_held_here(void);
void maps_fork_prepare(void);
void maps_fork_parent(void);
void maps_fork_child(void);

#endif
