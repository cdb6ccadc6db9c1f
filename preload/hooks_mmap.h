/* Memory the program maps itself (hooks_mmap.c). */
#ifndef MEMPROF_PRELOAD_HOOKS_MMAP_H
#define MEMPROF_PRELOAD_HOOKS_MMAP_H

/* Before recording starts: the page size, and where the allocator serving malloc is. */
void maps_init(void);
void maps_fork_prepare(void);
void maps_fork_parent(void);
void maps_fork_child(void);

#endif
