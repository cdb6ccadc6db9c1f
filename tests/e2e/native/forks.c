/* Processes.
 *   forks fork          parent and child allocate at their own lines
 *   forks spawn         posix_spawn of `forks execd` (no fork handlers: a fresh image)
 *   forks forkexec      fork, then the child execs `forks execd`
 *   forks forkexecfail  the same, after an exec of a file that is not there failed
 *   forks forkallocexec the same, after the child allocated (once, 64 KiB)
 *   forks forkexecbash  the child execs bash, which execs `forks execd` (one pid, three images)
 *   forks reexec        the process execs `forks execd` itself
 *   forks execd         allocates at its own line (the exec'd image)
 *   forks naming        allocates at a known line (run twice with one MEMPROF_OUTPUT)
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB 1024

extern char **environ;
static char outbuf[1 << 16];
static void *volatile sink;
static void *keep[16];

static void parent_before(void)
{
	keep[0] = malloc(200 * KiB); /* @PARENT_BEFORE */
}

static int child(void)
{
	for (int i = 0; i < 3; i++)
		keep[1 + i] = malloc(100 * KiB); /* @CHILD */
	free(keep[2]);
	printf("child done\n");
	fflush(stdout);
	return 0;
}

static void parent_after(void)
{
	keep[5] = malloc(300 * KiB); /* @PARENT_AFTER */
}

static int wait_child(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid) {
		perror("waitpid");
		return -1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	char *const execd_argv[] = {argv[0], "execd", NULL};
	if (!strcmp(mode, "execd")) {
		for (int i = 0; i < 4; i++)
			keep[i] = malloc(50 * KiB); /* @EXECD */
		printf("execd done\n");
		return 0;
	}
	if (!strcmp(mode, "naming")) {
		keep[0] = malloc(10 * KiB); /* @NAMING */
		printf("naming done\n");
		return 0;
	}
	parent_before();
	fflush(stdout);
	if (!strcmp(mode, "fork")) {
		pid_t pid = fork();
		if (pid == 0)
			exit(child());
		int st = wait_child(pid);
		parent_after();
		printf("parent: child status %d\n", st);
		return 0;
	}
	if (!strcmp(mode, "spawn")) {
		pid_t pid;
		int e = posix_spawn(&pid, argv[0], NULL, NULL, execd_argv, environ);
		if (e) {
			fprintf(stderr, "posix_spawn: %s\n", strerror(e));
			return 1;
		}
		int st = wait_child(pid);
		parent_after();
		printf("parent: child status %d\n", st);
		return 0;
	}
	if (!strcmp(mode, "forkexec") || !strcmp(mode, "forkexecfail") || !strcmp(mode, "forkallocexec") ||
	    !strcmp(mode, "forkexecbash")) {
		pid_t pid = fork();
		if (pid == 0) {
			if (!strcmp(mode, "forkexecbash")) {
				char cmd[4200];
				snprintf(cmd, sizeof cmd, "exec '%s' execd", argv[0]);
				execl("/bin/bash", "bash", "-c", cmd, (char *)NULL);
				_exit(127);
			}
			if (!strcmp(mode, "forkexecfail"))
				execv("/nonexistent/forks", execd_argv);
			if (!strcmp(mode, "forkallocexec"))
				sink = malloc(64 * KiB); /* @CHILD_EXEC */
			execv(argv[0], execd_argv);
			_exit(127);
		}
		int st = wait_child(pid);
		parent_after();
		printf("parent: child status %d\n", st);
		return 0;
	}
	if (!strcmp(mode, "reexec")) {
		parent_after();
		execv(argv[0], execd_argv);
		perror("execv");
		return 1;
	}
	fprintf(stderr, "unknown mode\n");
	return 2;
}
