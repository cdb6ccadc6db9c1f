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
/* mem_alloc and mem_free for blocks freed and allocated again and again (SQLite's): not
 * zeroed, and up to 256 KiB of freed blocks kept for reuse (mem.c). Either free function
 * takes a block of either allocation function. */
void *mem_reuse_alloc(size_t size);
void mem_reuse_free(void *p);
/* The bytes the cache holds (tests). */
size_t mem_reuse_cached(void);
/* jemalloc's pages: its mmap and munmap are renamed to these (jemalloc_private.sh),
 * system calls that never reach memprof's own mmap hooks (hooks_mmap.c). */
void *memprof_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, long off);
int memprof_sys_munmap(void *addr, size_t len);
/* Fork: the prepare handler takes the cache's lock. */
void mem_fork_prepare(void);
void mem_fork_parent(void);
void mem_fork_child(void);

#endif
