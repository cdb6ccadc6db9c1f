/* run: `memprof run [OPTIONS] PROGRAM [ARGS...]`, the program under libmemprof.so.
 *
 * The program is a child of this process, started with the library preloaded (and the
 * settings the options give); its exit status is ours, and a program killed by a signal
 * kills us with that signal (without a core file of ours), so that a shell or a script
 * sees what it would see without memprof. Signals sent to us by another process (kill,
 * timeout(1)) are passed on to the program; those the kernel sends to the whole
 * foreground process group (Ctrl-C on a terminal) reach the program by themselves and are
 * not sent twice. When the program has ended, one line on stderr names the file of the
 * process started (its descendants write their own, as with LD_PRELOAD).
 *
 * Which file the library will claim is known before the program starts: the first free
 * name of MEMPROF_OUTPUT's pattern with the child's pid (preload/init.c, init_claim), which
 * no other process can take first because the pattern holds the pid or the child is the
 * first to use it. The child waits on a pipe until that name is found. */
#define _GNU_SOURCE /* pipe2 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memprof/naming.h"

enum { RUN_BAD = 1, RUN_USAGE = 2 };

static volatile sig_atomic_t run_child;

void run_usage(FILE *f)
{
	fputs("usage: memprof run [OPTIONS] PROGRAM [ARGS...]\n"
	      "  runs PROGRAM with libmemprof.so preloaded (a PROGRAM ending in .py: python3 PROGRAM),\n"
	      "  exits as it does, and says on stderr which file holds its profile\n"
	      "  -o, --output=PATTERN  the profile's file (MEMPROF_OUTPUT; %p: the pid; default memprof.%p.db)\n"
	      "  --native              native stacks too (MEMPROF_NATIVE=1; mixed stacks in Python)\n"
	      "  --sample-bytes=N      sampling mode, one sample per N bytes on average (MEMPROF_SAMPLE_BYTES)\n"
	      "  --follow=WHICH        python|all|root: which processes write a file (MEMPROF_FOLLOW)\n",
	      f);
}

static int run_usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "memprof: run: %s%s%s\n(memprof run --help for usage)\n", what, arg ? " " : "", arg ? arg : "");
	return RUN_USAGE;
}

/* libmemprof.so: beside this program in a build tree (build/analyzer/memprof,
 * build/preload/libmemprof.so), else where `meson install` put it. */
static int run_find_lib(char *out, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			if ((size_t)snprintf(out, cap, "%s/../preload/libmemprof.so", self) < cap && access(out, R_OK) == 0)
				return 0;
		}
	}
	if ((size_t)snprintf(out, cap, "%s/libmemprof.so", MEMPROF_LIBDIR) < cap && access(out, R_OK) == 0)
		return 0;
	fprintf(stderr, "memprof: run: cannot find libmemprof.so (looked beside %s and in %s)\n",
		n > 0 ? self : "this program", MEMPROF_LIBDIR);
	return -1;
}

/* The name the library will claim for process `pid` (preload/init.c, init_claim): the
 * first free name of the pattern's. */
static int run_claim_name(const char *pattern, pid_t pid, char *out, size_t cap)
{
	char base[PATH_MAX];
	struct stat st;
	mp_name_expand(pattern, pid, base, sizeof base);
	for (int i = 0; i < MP_NAME_TRIES; i++) {
		mp_name_candidate(base, i, out, cap);
		if (lstat(out, &st) != 0)
			return 0;
	}
	return -1;
}

static void run_forward(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	/* sent by a process (kill, sigqueue, tgkill): pass it on; one the kernel sent (the
	 * terminal's, to the whole process group) has reached the program already */
	if (si->si_code <= 0 && run_child > 0)
		kill((pid_t)run_child, sig);
}

static int run_setenv(const char *name, const char *value)
{
	if (setenv(name, value, 1) != 0) {
		fprintf(stderr, "memprof: run: %s: %s\n", name, strerror(errno));
		return -1;
	}
	return 0;
}

int run_main(int argc, char **argv)
{
	enum { O_NATIVE = 256, O_SAMPLE, O_FOLLOW };
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},    {"native", no_argument, NULL, O_NATIVE},
		{"sample-bytes", required_argument, NULL, O_SAMPLE}, {"follow", required_argument, NULL, O_FOLLOW},
		{"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
	};
	const char *output = NULL, *sample = NULL, *follow = NULL;
	int native = 0, c;
	opterr = 0;
	optind = 1;
	/* '+': the first word that is not an option is the program; the rest are its own */
	while ((c = getopt_long(argc, argv, "+:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case O_NATIVE:
			native = 1;
			break;
		case O_SAMPLE: {
			char *end;
			errno = 0;
			long long v = strtoll(optarg, &end, 10);
			if (!*optarg || *end || v < 0 || errno)
				return run_usage_error("invalid --sample-bytes", optarg);
			sample = optarg;
			break;
		}
		case O_FOLLOW:
			if (strcmp(optarg, "python") && strcmp(optarg, "all") && strcmp(optarg, "root"))
				return run_usage_error("invalid --follow", optarg);
			follow = optarg;
			break;
		case 'h':
			run_usage(stdout);
			return 0;
		case ':':
			return run_usage_error("option needs a value:", argv[optind - 1]);
		default:
			return run_usage_error("unknown option", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return run_usage_error("missing PROGRAM", NULL);
	if (output && !*output)
		return run_usage_error("empty -o", NULL);

	char lib[PATH_MAX];
	if (run_find_lib(lib, sizeof lib))
		return RUN_BAD;
	/* the program's own preloads stay, after memprof's */
	const char *old = getenv("LD_PRELOAD");
	char preload[2 * PATH_MAX];
	if ((size_t)snprintf(preload, sizeof preload, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "") >=
	    sizeof preload)
		return run_usage_error("LD_PRELOAD too long", NULL);
	if (run_setenv("LD_PRELOAD", preload) || (output && run_setenv("MEMPROF_OUTPUT", output)) ||
	    (native && run_setenv("MEMPROF_NATIVE", "1")) || (sample && run_setenv("MEMPROF_SAMPLE_BYTES", sample)) ||
	    (follow && run_setenv("MEMPROF_FOLLOW", follow)))
		return RUN_BAD;
	const char *pattern = getenv("MEMPROF_OUTPUT");
	if (!pattern || !*pattern)
		pattern = MP_DEFAULT_OUTPUT;

	char **prog = argv + optind;
	size_t pl = strlen(prog[0]);
	char **args = prog;
	if (pl > 3 && !strcmp(prog[0] + pl - 3, ".py")) {
		int n = argc - optind;
		args = calloc((size_t)n + 2, sizeof *args);
		if (!args)
			return run_usage_error("out of memory", NULL);
		args[0] = (char *)"python3";
		memcpy(args + 1, prog, (size_t)n * sizeof *args);
	}

	int sync[2];
	if (pipe2(sync, O_CLOEXEC) != 0) {
		fprintf(stderr, "memprof: run: pipe: %s\n", strerror(errno));
		return RUN_BAD;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "memprof: run: fork: %s\n", strerror(errno));
		return RUN_BAD;
	}
	if (pid == 0) {
		char go;
		close(sync[1]);
		if (read(sync[0], &go, 1) != 1)
			_exit(127);
		execvp(args[0], args);
		int err = errno;
		fprintf(stderr, "memprof: run: %s: %s\n", args[0], strerror(err));
		_exit(err == ENOENT ? 127 : 126);
	}
	run_child = pid;
	close(sync[0]);
	char file[PATH_MAX];
	int named = run_claim_name(pattern, pid, file, sizeof file) == 0;

	struct sigaction sa = {.sa_sigaction = run_forward, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigemptyset(&sa.sa_mask);
	static const int forwarded[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM};
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaction(forwarded[i], &sa, NULL);
	if (write(sync[1], "g", 1) != 1) {
		fprintf(stderr, "memprof: run: cannot start the program: %s\n", strerror(errno));
		kill(pid, SIGKILL);
	}
	close(sync[1]);

	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "memprof: run: waitpid: %s\n", strerror(errno));
			return RUN_BAD;
		}
	run_child = 0;
	struct stat st;
	/* an exec that failed (127, 126) said so and made no file */
	if (named && stat(file, &st) == 0)
		fprintf(stderr, "memprof: profile written to %s (memprof report %s)\n", file, file);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	int sig = WTERMSIG(status);
	struct rlimit none = {0, 0};
	setrlimit(RLIMIT_CORE, &none);
	signal(sig, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	return 128 + sig;
}
