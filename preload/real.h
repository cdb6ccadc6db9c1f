/* The program's real allocator functions, found with dlsym(RTLD_NEXT) so that whatever
 * allocator the program uses (glibc's or one linked into it) keeps serving it. */
#ifndef MEMPROF_PRELOAD_REAL_H
#define MEMPROF_PRELOAD_REAL_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct real_fns {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*reallocarray)(void *, size_t, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
	int (*dlclose)(void *);
	int (*execve)(const char *, char *const[], char *const[]);
	int (*execv)(const char *, char *const[]);
	int (*execvp)(const char *, char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*fexecve)(int, char *const[], char *const[]);
	int (*kill)(pid_t, int);
	int (*raise)(int);
	int (*close)(int);
	int (*close_range)(unsigned, unsigned, int);
	void (*closefrom)(int);
	int (*pipe2)(int *, int);
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	sighandler_t (*signal)(int, sighandler_t);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	void (*pthread_exit)(void *) __attribute__((noreturn));
	void (*exit_)(int) __attribute__((noreturn));
	void (*Exit_)(int) __attribute__((noreturn));
	void (*quick_exit)(int) __attribute__((noreturn));
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	void *(*mmap64)(void *, size_t, int, int, int, off_t);
	int (*munmap)(void *, size_t);
	void *(*mremap)(void *, size_t, size_t, int, ...);
} real_fns_t;

extern real_fns_t real;

/* Resolves every function once; safe to call from any hook (idempotent). */
void real_init(void);
/* Resolves operator new and delete (hooks_cxx.c; otherwise at their first call, through
 * a frame of memprof's in that call's stack). No-op where they are not wrapped. */
void real_cxx_init(void);
/* The dlsym bootstrap (dlsym itself calls calloc) is served from a static pool. */
void *real_bootstrap_alloc(size_t size);
int real_is_bootstrap(const void *p);
/* Bytes from p to the end of the pool (an upper bound of the block's size). */
size_t real_bootstrap_avail(const void *p);

#endif
