/* memprof's own memory: a private jemalloc arena, never the hooked malloc, so that
 * nothing memprof allocates appears in the profile or disturbs the program's heap. */
#ifndef MEMPROF_PRELOAD_MEM_H
#define MEMPROF_PRELOAD_MEM_H

#include <stddef.h>

int mem_init(void);
void *mem_alloc(size_t size);          /* zeroed; NULL on failure */
void *mem_realloc(void *p, size_t size);
void mem_free(void *p);
char *mem_strdup(const char *s);
/* malloc-compatible functions for SQLite and zstd. */
size_t mem_usable(void *p);

#endif
