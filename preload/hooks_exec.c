/* The exec family: a successful exec replaces the process image without running
 * destructors, so everything recorded so far is written (and committed) first. If the
 * exec fails, recording simply goes on. glibc's exec functions call each other through
 * internal symbols, so each public one is wrapped.
 *
 * A forked child that execs before it recorded anything (a shell's child, or 3.9's
 * subprocess) hands the new image its file's name in the environment the exec is given
 * (MEMPROF_EXEC_EMPTY, init_exec_empty), and the new image removes it: such a child
 * would otherwise leave an empty file beside the one its new image writes. */
#define _GNU_SOURCE
#include "mem.h"
#include "mp.h"
#include "real.h"
#include "writer.h"

#include <errno.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define HOOKS_EXEC_MAX_ARGS 4096

static char hooks_exec_var[4300];

/* Before the exec: everything written and the file marked complete. The environment to
 * exec with: envp, or a copy of it with MEMPROF_EXEC_EMPTY (any of envp's own left out)
 * when the child recorded nothing, in *made (freed by hooks_exec_ret). */
static char *const *hooks_exec_before(char *const *envp, char ***made)
{
	if (!real.execve)
		real_init();
	writer_exec_begin();
	*made = NULL;
	if (!envp || !init_exec_empty(hooks_exec_var, sizeof hooks_exec_var))
		return envp;
	/* only for an image memprof is loaded into: another would keep the variable */
	size_t n = 0;
	bool preloaded = false;
	for (; envp[n]; n++)
		preloaded |= strncmp(envp[n], "LD_PRELOAD=", 11) == 0 && strstr(envp[n], "libmemprof");
	if (!preloaded)
		return envp;
	char **env = mem_alloc((n + 2) * sizeof *env);
	if (!env)
		return envp;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(envp[i], MP_EXEC_EMPTY, strlen(MP_EXEC_EMPTY)) != 0)
			env[k++] = envp[i];
	env[k++] = hooks_exec_var;
	env[k] = NULL;
	*made = env;
	return env;
}

/* The exec returned, so it failed: the file is running again. */
static int hooks_exec_ret(int rc, char **made)
{
	int saved = errno;
	mem_free(made);
	writer_exec_failed();
	errno = saved;
	return rc;
}

MP_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	char **made;
	char *const *env = hooks_exec_before(envp, &made);
	return hooks_exec_ret(real.execve(path, argv, env), made);
}

MP_EXPORT int execv(const char *path, char *const argv[])
{
	char **made;
	char *const *env = hooks_exec_before(environ, &made);
	return hooks_exec_ret(made ? real.execve(path, argv, env) : real.execv(path, argv), made);
}

MP_EXPORT int execvp(const char *file, char *const argv[])
{
	char **made;
	char *const *env = hooks_exec_before(environ, &made);
	return hooks_exec_ret(made ? real.execvpe(file, argv, env) : real.execvp(file, argv), made);
}

MP_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	char **made;
	char *const *env = hooks_exec_before(envp, &made);
	return hooks_exec_ret(real.execvpe(file, argv, env), made);
}

MP_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	char **made;
	char *const *env = hooks_exec_before(envp, &made);
	return hooks_exec_ret(real.fexecve(fd, argv, env), made);
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
