/* The exec family: a successful exec replaces the process image without running
 * destructors, so everything recorded so far is written (and committed) first. If the
 * exec fails, recording simply goes on. glibc's exec functions call each other through
 * internal symbols, so each public one is wrapped. */
#define _GNU_SOURCE
#include "mp.h"
#include "real.h"
#include "writer.h"

#include <errno.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#define HOOKS_EXEC_MAX_ARGS 4096

/* Before the exec: everything written and the file marked complete. */
static int hooks_exec_before(void)
{
	if (!real.execve)
		real_init();
	writer_exec_begin();
	return 1;
}

/* The exec returned, so it failed: the file is running again. */
static int hooks_exec_ret(int rc)
{
	writer_exec_failed();
	return rc;
}

MP_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return hooks_exec_ret(hooks_exec_before() ? real.execve(path, argv, envp) : -1);
}

MP_EXPORT int execv(const char *path, char *const argv[])
{
	return hooks_exec_ret(hooks_exec_before() ? real.execv(path, argv) : -1);
}

MP_EXPORT int execvp(const char *file, char *const argv[])
{
	return hooks_exec_ret(hooks_exec_before() ? real.execvp(file, argv) : -1);
}

MP_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return hooks_exec_ret(hooks_exec_before() ? real.execvpe(file, argv, envp) : -1);
}

MP_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	return hooks_exec_ret(hooks_exec_before() ? real.fexecve(fd, argv, envp) : -1);
}

/* The list forms: collect the arguments, then the vector forms above. */
static void hooks_exec_collect(const char *arg0, va_list *ap, char **argv)
{
	size_t n = 1;
	argv[0] = (char *)arg0;
	while (argv[n - 1] && n < HOOKS_EXEC_MAX_ARGS)
		argv[n++] = va_arg(*ap, char *);
	argv[HOOKS_EXEC_MAX_ARGS - 1] = NULL;
}

MP_EXPORT int execl(const char *path, const char *arg, ...)
{
	char *argv[HOOKS_EXEC_MAX_ARGS];
	va_list ap;
	va_start(ap, arg);
	hooks_exec_collect(arg, &ap, argv);
	va_end(ap);
	return execv(path, argv);
}

MP_EXPORT int execlp(const char *file, const char *arg, ...)
{
	char *argv[HOOKS_EXEC_MAX_ARGS];
	va_list ap;
	va_start(ap, arg);
	hooks_exec_collect(arg, &ap, argv);
	va_end(ap);
	return execvp(file, argv);
}

MP_EXPORT int execle(const char *path, const char *arg, ...)
{
	char *argv[HOOKS_EXEC_MAX_ARGS];
	va_list ap;
	va_start(ap, arg);
	hooks_exec_collect(arg, &ap, argv);
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, argv, envp);
}
