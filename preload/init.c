/* Start-up and shutdown of libmemprof.so: the constructor decides whether this process
 * is followed, attaches to CPython, creates the output file and starts the writer and
 * sampler threads; the destructor (and the _exit hooks, fatal-signal handlers and
 * fork handlers) make sure everything recorded reaches the file.
 *
 * Which processes write a file (MEMPROF_FOLLOW): the first process started with the
 * library is the root; MEMPROF_ROOT_PID in the environment tells its descendants that
 * they are not. `python` (default): Python processes and the root; `all`: every
 * process; `root`: the root only. When the root process execs, the new image takes over
 * the root's file name if the old image was a wrapper (a shell or env: a pyenv shim that
 * execs the real python3, init_is_wrapper); any other program's profile is kept, and the
 * new image writes NAME.1.db (under `python`, a non-Python image exec'd by a Python root
 * writes nothing). */
#define _GNU_SOURCE
#include "clock.h"
#include "config.h"
#include "fds.h"
#include "hooks_mmap.h"
#include "mem.h"
#include "modules.h"
#include "mp.h"
#include "naming.h"
#include "native.h"
#include "python.h"
#include "real.h"
#include "record.h"
#include "sampler.h"
#include "stack.h"
#include "thread.h"
#include "unwind.h"
#include "writer.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <memprof/schema.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread int mp_guard MP_TLS;
atomic_int mp_recording;

int writer_run(void);
extern unsigned writer_flush_ms;

static bool init_is_python;
static char init_path[4096];
/* MEMPROF_ROOT_FILE as the process started (init_claim), read before memprof sets any
 * variable: bash's own setenv, which memprof calls in a bash process, makes bash's
 * getenv answer from the shell's variables alone before its main has read the
 * environment. */
static char init_root_file[4096];

/* ---- the output file ----------------------------------------------------------------- */

static void init_unlink_db(const char *path)
{
	char aux[4200];
	unlink(path);
	snprintf(aux, sizeof aux, "%s-wal", path);
	unlink(aux);
	snprintf(aux, sizeof aux, "%s-shm", path);
	unlink(aux);
}

/* Whether `name` is one init_claim makes of the pattern's name `base`: base itself, or
 * its stem, a dot, a number from 1 and its extension (name.1.db). */
static bool init_claimed_name(const char *name, const char *base)
{
	if (!strcmp(name, base))
		return true;
	const char *ext = mp_name_ext(base);
	size_t stem = strlen(base) - strlen(ext), digits = 0;
	if (strncmp(name, base, stem) || name[stem] != '.')
		return false;
	const char *d = name + stem + 1;
	while (d[digits] >= '0' && d[digits] <= '9')
		digits++;
	return digits && d[0] != '0' && !strcmp(d + digits, ext);
}

/* path, absolute (from the working directory); false if it does not fit. */
static bool init_absolute(const char *path, char *out, size_t cap)
{
	if (path[0] == '/')
		return (size_t)snprintf(out, cap, "%s", path) < cap;
	char cwd[4096];
	return getcwd(cwd, sizeof cwd) && (size_t)snprintf(out, cap, "%s/%s", cwd, path) < cap;
}

/* Whether this image is a wrapper: a shell or env, which a wrapper script (a pyenv
 * shim: bash, env, bash again) runs to exec the program it names, or a launcher that
 * execs the command it is given (nice, nohup, stdbuf, taskset...): the root's file goes
 * over to the image it execs. Any other program keeps its profile when it execs
 * (init_claim). Known by the name it was run by (a multi-call binary's links, such as
 * busybox's or uutils', are one executable) or the executable's. */
static bool init_is_wrapper(void)
{
	static const char *const wrappers[] = {"sh",	 "bash",    "dash",    "zsh",	"ksh",	  "mksh",
					       "busybox", "env",     "nice",    "nohup", "stdbuf", "taskset",
					       "chrt",	 "ionice",  "numactl", "setsid"};
	char exe[4096];
	const char *names[2] = {(const char *)getauxval(AT_EXECFN), NULL};
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		names[1] = exe;
	}
	for (size_t k = 0; k < 2; k++) {
		if (!names[k])
			continue;
		const char *base = strrchr(names[k], '/');
		base = base ? base + 1 : names[k];
		for (size_t i = 0; i < sizeof wrappers / sizeof *wrappers; i++)
			if (strcmp(base, wrappers[i]) == 0)
				return true;
	}
	return false;
}

/* A pattern that names a directory (one that exists, or any ending in '/') gets the
 * default name in it: MEMPROF_OUTPUT=profiles writes profiles/memprof.<pid>.db (it wrote
 * profiles.1, beside the directory). */
static void init_in_directory(char *base, size_t cap)
{
	size_t n = strlen(base);
	struct stat st;
	if (!n || (base[n - 1] != '/' && (stat(base, &st) != 0 || !S_ISDIR(st.st_mode))))
		return;
	char name[64];
	mp_name_expand(MP_DEFAULT_OUTPUT, getpid(), name, sizeof name);
	if (n + 1 + strlen(name) < cap)
		snprintf(base + n, cap - n, "%s%s", base[n - 1] == '/' ? "" : "/", name);
}

/* Claims a file name exclusively: the pattern's name, else name.1.db, name.2.db, ... so
 * that processes (and pids reused by later processes) never overwrite each other. The
 * new image of a root that execs (`replace`) takes over the file the root made, which
 * MEMPROF_ROOT_FILE names with its absolute path (the pattern's name may be someone
 * else's file, which made the root take name.1.db): that file alone is replaced, and
 * only if it is a name of this pattern in this working directory. */
static int init_claim(bool replace)
{
	char base[4096], abs_base[4096];
	mp_name_expand(config.output ? config.output : MP_DEFAULT_OUTPUT, getpid(), base, sizeof base);
	init_in_directory(base, sizeof base);
	const char *prev = replace && init_root_file[0] ? init_root_file : NULL;
	if (prev && init_absolute(base, abs_base, sizeof abs_base) && init_claimed_name(prev, abs_base)) {
		init_unlink_db(prev);
		snprintf(init_path, sizeof init_path, "%s", prev);
		int fd = open(init_path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
	}
	for (int i = 0; i < MP_NAME_TRIES; i++) {
		mp_name_candidate(base, i, init_path, sizeof init_path);
		int fd = open(init_path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (errno != EEXIST) {
			/* once per process: an image it execs (a shell's exec of the program) would
			 * fail alike and say it again */
			char pid[24];
			const char *said = getenv("MEMPROF_CREATE_FAILED");
			snprintf(pid, sizeof pid, "%d", (int)getpid());
			if (!said || strcmp(said, pid)) {
				mp_log("cannot create %s: %s", init_path, strerror(errno));
				setenv("MEMPROF_CREATE_FAILED", pid, 1);
			}
			return -1;
		}
	}
	mp_log("cannot find a free file name for %s", base);
	return -1;
}

/* ---- meta ------------------------------------------------------------------------------ */

static void init_json_str(char *out, size_t cap, size_t *k, const char *s, size_t n)
{
	if (*k + 2 >= cap)
		return;
	out[(*k)++] = '"';
	for (size_t i = 0; i < n && *k + 8 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[(*k)++] = '\\';
			out[(*k)++] = (char)c;
		} else if (c < 0x20) {
			*k += (size_t)snprintf(out + *k, cap - *k, "\\u%04x", c);
		} else {
			out[(*k)++] = (char)c;
		}
	}
	out[(*k)++] = '"';
}

static void init_write_meta(void)
{
	static char raw[32768], cmd[32768], argv_json[65536];
	char buf[64];
	ssize_t n = 0;
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t r;
		while (n < (ssize_t)sizeof raw - 1 && (r = read(fd, raw + n, sizeof raw - 1 - (size_t)n)) > 0)
			n += r;
		close(fd);
	}
	size_t ck = 0, jk = 0;
	argv_json[jk++] = '[';
	for (ssize_t i = 0; i < n;) {
		size_t len = strnlen(raw + i, (size_t)(n - i));
		if (jk > 1)
			argv_json[jk++] = ',';
		init_json_str(argv_json, sizeof argv_json - 2, &jk, raw + i, len);
		bool quote = len == 0 || strpbrk(raw + i, " \t\"'\\$`*?;&|<>()") != NULL;
		if (ck && ck < sizeof cmd - 1)
			cmd[ck++] = ' ';
		if (quote && ck < sizeof cmd - 1)
			cmd[ck++] = '\'';
		for (size_t j = 0; j < len && ck < sizeof cmd - 5; j++) {
			if (quote && raw[i + (ssize_t)j] == '\'') {
				memcpy(cmd + ck, "'\\''", 4);
				ck += 4;
			} else {
				cmd[ck++] = raw[i + (ssize_t)j];
			}
		}
		if (quote && ck < sizeof cmd - 1)
			cmd[ck++] = '\'';
		i += (ssize_t)len + 1;
	}
	cmd[ck] = 0;
	argv_json[jk++] = ']';
	argv_json[jk] = 0;
	writer_set_meta("command", cmd);
	writer_set_meta("argv", argv_json);
	char exe[4096];
	ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[el > 0 ? el : 0] = 0;
	writer_set_meta("exe", exe);
	char cwd[4096];
	if (getcwd(cwd, sizeof cwd)) {
		writer_set_meta("cwd", cwd); /* relative source paths are relative to it */
		writer_note_cwd(cwd);
	}
	snprintf(buf, sizeof buf, "%d", (int)getpid());
	writer_set_meta("pid", buf);
	snprintf(buf, sizeof buf, "%d", (int)getppid());
	writer_set_meta("ppid", buf);
	snprintf(buf, sizeof buf, "%.6f", clock_start_unix);
	writer_set_meta("start_time_unix", buf);
	writer_set_meta("clock", clock_use_tsc ? "tsc" : "monotonic");
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)clock_start_ticks);
	writer_set_meta("clock_start_ticks", buf);
	snprintf(buf, sizeof buf, "%.3f", clock_ticks_per_sec());
	writer_set_meta("clock_ticks_per_sec", buf);
	if (python_version())
		writer_set_meta("python_version", python_version());
	writer_set_meta("native_stacks", record_native ? "1" : "0");
	snprintf(buf, sizeof buf, "%u", record_max_depth);
	writer_set_meta("max_depth", buf);
	snprintf(buf, sizeof buf, "%u", sampler_interval_ms);
	writer_set_meta("sample_interval_ms", buf);
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)record_sample_bytes);
	writer_set_meta("sample_bytes", buf);
}

/* SIGXFSZ held on the program's thread while it writes memprof's file (writer_start to
 * writer_run; the writer thread holds every signal): past a file size limit (`ulimit -f`)
 * a write raises it, and its default action ended the program (exit status 153 where it
 * ran plain). Held, the write fails (EFBIG) and memprof says so and records nothing; the
 * signal it raised (on this thread: taken before a process-wide one) is taken back
 * before the mask is restored, only if a write of memprof's failed so and no SIGXFSZ was
 * pending already (the program's, which one more would merge with). */
typedef struct init_xfsz {
	sigset_t old;
	bool pending;
} init_xfsz_t;

static void init_xfsz_hold(init_xfsz_t *h)
{
	sigset_t xfsz, pend;
	sigemptyset(&xfsz);
	sigaddset(&xfsz, SIGXFSZ);
	pthread_sigmask(SIG_BLOCK, &xfsz, &h->old);
	h->pending = sigpending(&pend) == 0 && sigismember(&pend, SIGXFSZ);
}

static void init_xfsz_release(init_xfsz_t *h)
{
	sigset_t xfsz, pend;
	sigemptyset(&xfsz);
	sigaddset(&xfsz, SIGXFSZ);
	if (!h->pending && writer_io_errno() == EFBIG && sigpending(&pend) == 0 && sigismember(&pend, SIGXFSZ)) {
		struct timespec now = {0, 0};
		sigtimedwait(&xfsz, NULL, &now);
	}
	pthread_sigmask(SIG_SETMASK, &h->old, NULL);
}

/* What init_start_recording does up to the writer thread's start (SIGXFSZ held). */
static int init_start_writing(bool replace, bool is_root)
{
	record_native = config.native >= 0 ? config.native == 1 : !python_active;
	record_gil_lean = !record_native && !record_sample_bytes;
	if (record_native && unwind_init() < 0)
		mp_log("cannot allocate the unwinder's tables; libunwind unwinds every stack");
	if (init_claim(replace) < 0)
		return -1;
	fds_keep_stderr();
	if (writer_start(init_path) < 0) {
		/* writer_start said why, in one line; the file it could not write is not left
		 * behind (a file of no tables would read as "not a memprof database") */
		init_unlink_db(init_path);
		return -1;
	}
	init_write_meta();
	modules_scan();
	char abs_path[4096];
	bool named = is_root && init_absolute(init_path, abs_path, sizeof abs_path);
	if (named)
		setenv("MEMPROF_ROOT_FILE", abs_path, 1);
	int rc = writer_run();
	if (rc < 0) {
		if (rc == -EIO) /* its first commit failed, said: no file of no meta rows left */
			init_unlink_db(init_path);
		else
			mp_log("cannot start the writer thread; not recording");
		if (named)
			unsetenv("MEMPROF_ROOT_FILE");
		return -1;
	}
	return 0;
}

/* Opens the file and starts the threads; recording is on when it returns 0. The root
 * names its file in the environment (MEMPROF_ROOT_FILE, for an image it execs) before
 * memprof's threads start: setenv while another thread reads the environment is a race. */
static int init_start_recording(bool replace, bool is_root)
{
	init_xfsz_t xfsz;
	init_xfsz_hold(&xfsz);
	int rc = init_start_writing(replace, is_root);
	init_xfsz_release(&xfsz);
	if (rc < 0)
		return -1;
	sampler_start();
	maps_init();
	atomic_store(&mp_recording, 1);
	return 0;
}

/* ---- fork ------------------------------------------------------------------------------ */

static bool init_followed;
static char init_fork_file[4200]; /* a forked child's file (absolute), or "" */

static void init_fork_prepare(void)
{
	mp_guard_enter();
	maps_fork_prepare();
	record_fork_prepare();
	writer_fork_prepare();
	thread_fork_prepare();
	stack_fork_prepare();
	mem_fork_prepare();
}

static void init_fork_parent(void)
{
	mem_fork_parent();
	stack_fork_parent();
	thread_fork_parent();
	writer_fork_parent();
	record_fork_parent();
	maps_fork_parent();
	mp_unguard();
}

static void init_fork_child(void)
{
	bool was = atomic_load(&mp_recording);
	atomic_store(&mp_recording, 0);
	mem_fork_child();
	clock_fork_child();
	fds_fork_child();
	writer_fork_child();
	sampler_fork_child();
	thread_fork_child();
	record_fork_child();
	maps_fork_child();
	stack_fork_child();
	python_fork_child();
	modules_fork_child();
	bool follow = was && (config.follow == CONFIG_FOLLOW_ALL ||
			      (config.follow == CONFIG_FOLLOW_PYTHON && init_is_python));
	init_fork_file[0] = 0;
	if (follow && init_start_recording(false, false) == 0 &&
	    !init_absolute(init_path, init_fork_file, sizeof init_fork_file))
		init_fork_file[0] = 0;
	mp_unguard();
}

/* A forked child's file, by its absolute path: the image it execs removes it when the
 * child recorded nothing (init_exec_empty). Fork children of 3.9's subprocess and of
 * shells exec at once: each would leave an empty file beside the one its new image
 * writes, named memprof.<pid>.1.db for the collision. */
bool init_exec_empty(char *out, size_t cap)
{
	if (!init_fork_file[0] || !writer_records_here() || !thread_none())
		return false;
	return (size_t)snprintf(out, cap, MP_EXEC_EMPTY "%d:%s", (int)getpid(), init_fork_file) < cap;
}

/* The file of the forked child this image replaced, which recorded nothing: removed,
 * whether this image is followed or not; the variable goes with it, so that the images
 * this one starts never see it (an image of the same pid would remove the file this one
 * writes). Read and taken out of environ itself: a program that defines getenv and
 * unsetenv of its own, as bash does (its unsetenv unsets a shell variable), would
 * otherwise keep it and pass it on. */
static void init_exec_empty_remove(void)
{
	extern char **environ;
	for (char **e = environ; e && *e;) {
		if (strncmp(*e, MP_EXEC_EMPTY, strlen(MP_EXEC_EMPTY)) != 0) {
			e++;
			continue;
		}
		char *end;
		long pid = strtol(*e + strlen(MP_EXEC_EMPTY), &end, 10);
		size_t n = strlen(end);
		if (pid == (long)getpid() && end[0] == ':' && end[1] == '/' && n > 4 && strcmp(end + n - 3, ".db") == 0)
			init_unlink_db(end + 1);
		for (char **m = e; (m[0] = m[1]); m++) /* out of the array, in place */
			;
	}
}

/* ---- fatal signals ----------------------------------------------------------------------- */

/* The signals whose default action ends the process and that memprof catches to write
 * everything recorded first: the faults and abort, and those another process or the
 * terminal sends. SIGINT only outside Python, whose own handler turns it into
 * KeyboardInterrupt (an uncaught one ends the program by kill(getpid(), SIGINT) once
 * the interpreter is finalized: the kill hook, hooks_libc.c). */
static const int init_fatal[] = {SIGSEGV, SIGBUS,  SIGILL,  SIGFPE,  SIGABRT, SIGTERM,   SIGHUP, SIGQUIT,
				 SIGINT,  SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2, SIGVTALRM, SIGXCPU, SIGXFSZ};

/* Not a fault of the instruction the thread was running (nor abort): sent to the
 * process, or raised by a system call (SIGPIPE, SIGXFSZ) that returns with an error once
 * the handler does. */
static bool init_asynchronous(int sig)
{
	return sig != SIGSEGV && sig != SIGBUS && sig != SIGILL && sig != SIGFPE && sig != SIGABRT;
}

static void init_on_fatal(int sig)
{
	int saved = errno;
	/* The thread was inside memprof, maybe holding a lock that the writer's last flush
	 * needs (a code object's capture): flushing here would wait for itself. The sampler
	 * thread flushes once this thread has gone on, and sends the signal back to it. A
	 * fault inside memprof cannot wait: it is flushed here, as far as the writer gets. */
	if (mp_guard && init_asynchronous(sig) && sampler_defer_fatal(sig, (pid_t)syscall(SYS_gettid))) {
		errno = saved;
		return;
	}
	writer_emergency_flush(2000);
	real.signal(sig, SIG_DFL); /* (not the wrapper, which would put this handler back) */
	errno = saved;
	real.raise(sig);
}

/* The signals memprof's handler stands in for the default action of (bit per signal). */
static _Atomic uint64_t init_handled;

static void init_fatal_action(struct sigaction *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sa_handler = init_on_fatal;
	sa->sa_flags = SA_RESETHAND | SA_NODEFER | SA_ONSTACK;
	sigemptyset(&sa->sa_mask);
}

void init_signals(void)
{
	for (size_t i = 0; i < sizeof init_fatal / sizeof init_fatal[0]; i++) {
		struct sigaction old;
		if ((init_fatal[i] == SIGINT && init_is_python) || real.sigaction(init_fatal[i], NULL, &old) ||
		    old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO))
			continue;
		struct sigaction sa;
		init_fatal_action(&sa);
		if (real.sigaction(init_fatal[i], &sa, NULL) == 0)
			atomic_fetch_or(&init_handled, 1ull << init_fatal[i]);
	}
}

/* The program asks what a signal's disposition is: where memprof's handler stands in
 * for the default action (init_signals put it there only over SIG_DFL), the answer is
 * SIG_DFL, as without memprof, so that a program that installs a handler of its own only
 * over the default, or chains to the one it found, behaves as it would. And a program
 * that sets SIG_DFL on such a signal (putting back the disposition it was told of, or
 * resetting its own handler) gets memprof's handler again, which ends the program as the
 * default action would, once everything is written. */
static bool init_stands_in(int sig)
{
	return sig > 0 && sig < 64 && (atomic_load_explicit(&init_handled, memory_order_relaxed) >> sig & 1) &&
	       !mp_guard;
}

/* ---- the program's signal handlers ------------------------------------------------------- */

/* The program's handlers run through init_trampoline (installed with SA_SIGINFO, for a
 * handler that takes three arguments) or init_trampoline1 (the rest), which the sigaction
 * and signal wrappers install in their place with the program's own flags and mask: a
 * handler whose signal interrupted the thread inside memprof runs with the guard at
 * MP_GUARD_HANDLER, so that what it allocates, frees, maps or unmaps is stashed and
 * recorded once the thread leaves memprof (mp.h), not lost. Each trampoline reads the
 * program's handler from a table of its own kind, so that the kernel's action (flags,
 * mask, which trampoline) and the handler called always agree. The program is told of
 * its own handlers, as without memprof. */
static _Atomic(void *) init_handlers1[NSIG], init_handlers3[NSIG];
/* The innermost trampoline's frame on this thread while a handler runs over memprof: a
 * hook that finds the guard at MP_GUARD_HANDLER but itself outside that handler knows
 * the handler was left by a jump (siglongjmp) and puts the guard back (record_stash). */
__thread uintptr_t init_handler_frame MP_TLS;

/* The table entry of the program's handler of `sig` that takes three arguments or one. */
static inline _Atomic(void *) *init_handler_slot(int sig, bool three)
{
	return three ? &init_handlers3[sig] : &init_handlers1[sig];
}

static inline void init_call_handler(int sig, siginfo_t *si, void *uc, bool three)
{
	void *fn = atomic_load_explicit(init_handler_slot(sig, three), memory_order_relaxed);
	if (!fn)
		return;
	int g = mp_guard;
	uintptr_t frame = init_handler_frame;
	if (g) {
		mp_guard = MP_GUARD_HANDLER;
		init_handler_frame = (uintptr_t)__builtin_frame_address(0);
	}
	if (three)
		((void (*)(int, siginfo_t *, void *))fn)(sig, si, uc);
	else
		((void (*)(int))fn)(sig);
	/* (a handler nested in one that runs over memprof leaves the stash to it) */
	if (g && (g & INT_MAX) < MP_GUARD_HANDLER && record_stash_pending())
		g |= MP_GUARD_PENDING;
	init_handler_frame = frame;
	mp_guard = g;
}

static void init_trampoline(int sig, siginfo_t *si, void *uc)
{
	init_call_handler(sig, si, uc, true);
}

static void init_trampoline1(int sig)
{
	init_call_handler(sig, NULL, NULL, false);
}

/* The program's handler that `fn`, the kernel's, stands for: fn itself unless it is a
 * trampoline (then the one its table held, was1 or was3). */
static void *init_program_handler(void *fn, void *was1, void *was3)
{
	if (fn == (void *)init_trampoline)
		return was3;
	if (fn == (void *)init_trampoline1)
		return was1;
	return fn;
}

static bool init_is_function(void *fn)
{
	return fn != (void *)SIG_DFL && fn != (void *)SIG_IGN && fn != (void *)SIG_ERR;
}

MP_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (!real.sigaction)
		real_init();
	/* (another thread resolving at this moment: looked up here) */
	int (*fn)(int, const struct sigaction *, struct sigaction *) =
		real.sigaction ? real.sigaction : (__typeof__(fn))dlsym(RTLD_NEXT, "sigaction");
	struct sigaction ours;
	if (act && act->sa_handler == SIG_DFL && !(act->sa_flags & SA_SIGINFO) && init_stands_in(sig)) {
		init_fatal_action(&ours);
		act = &ours;
	}
	bool known = sig > 0 && sig < NSIG;
	void *was1 = known ? atomic_load(init_handler_slot(sig, false)) : NULL;
	void *was3 = known ? atomic_load(init_handler_slot(sig, true)) : NULL;
	bool three = act && (act->sa_flags & SA_SIGINFO);
	void *handler = act ? (three ? (void *)act->sa_sigaction : (void *)act->sa_handler) : NULL;
	bool wrap = known && act && act != &ours && init_is_function(handler);
	if (wrap) {
		ours = *act;
		if (three)
			ours.sa_sigaction = init_trampoline;
		else
			ours.sa_handler = init_trampoline1;
		atomic_store(init_handler_slot(sig, three), handler);
		act = &ours;
	}
	int rc = fn(sig, act, old);
	if (rc != 0 && wrap)
		atomic_store(init_handler_slot(sig, three), three ? was3 : was1);
	if (rc == 0 && old) /* (sa_handler and sa_sigaction share their storage) */
		old->sa_handler = (sighandler_t)init_program_handler((void *)old->sa_handler, was1, was3);
	if (rc == 0 && old && !(old->sa_flags & SA_SIGINFO) && old->sa_handler == init_on_fatal) {
		memset(old, 0, sizeof *old);
		old->sa_handler = SIG_DFL;
	}
	return rc;
}

MP_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	if (handler == SIG_DFL && init_stands_in(sig)) {
		struct sigaction sa, was;
		init_fatal_action(&sa);
		return sigaction(sig, &sa, &was) == 0 ? was.sa_handler : SIG_ERR;
	}
	if (!real.signal)
		real_init();
	sighandler_t (*fn)(int, sighandler_t) = real.signal ? real.signal : (__typeof__(fn))dlsym(RTLD_NEXT, "signal");
	bool known = sig > 0 && sig < NSIG;
	void *was1 = known ? atomic_load(init_handler_slot(sig, false)) : NULL;
	void *was3 = known ? atomic_load(init_handler_slot(sig, true)) : NULL;
	bool wrap = known && init_is_function((void *)handler);
	/* (glibc's signal sets the mask and SA_RESTART as siginterrupt said) */
	if (wrap)
		atomic_store(init_handler_slot(sig, false), (void *)handler);
	sighandler_t was = fn(sig, wrap ? init_trampoline1 : handler);
	if (was == SIG_ERR && wrap)
		atomic_store(init_handler_slot(sig, false), was1);
	was = (sighandler_t)init_program_handler((void *)was, was1, was3);
	return was == init_on_fatal ? SIG_DFL : was;
}

/* The other names glibc gives `signal` (the same function), which a program calling them
 * by name reaches without memprof's `signal`. */
sighandler_t bsd_signal(int sig, sighandler_t handler); /* (not declared under _GNU_SOURCE) */
MP_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler)
{
	return signal(sig, handler);
}

MP_EXPORT sighandler_t ssignal(int sig, sighandler_t handler)
{
	return signal(sig, handler);
}

/* Not a signal, or not an action (errno EINVAL). */
static bool init_bad_signal(int sig, sighandler_t handler)
{
	if (handler != SIG_ERR && sig > 0 && sig < NSIG)
		return false;
	errno = EINVAL;
	return true;
}

/* System V's signal, which glibc's headers make a program's `signal` when it is built for
 * strict ISO C or X/Open (-std=c99 without _DEFAULT_SOURCE): the handler reset to the
 * default once it runs, its own signal not blocked meanwhile, a system call it interrupts
 * not restarted. Through memprof's sigaction, so its handler gets the trampoline and the
 * program hears of its own handlers (not memprof's stand-in for a fatal signal). */
MP_EXPORT sighandler_t __sysv_signal(int sig, sighandler_t handler)
{
	if (init_bad_signal(sig, handler))
		return SIG_ERR;
	struct sigaction sa, was;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = (int)(SA_RESETHAND | SA_NODEFER);
	return sigaction(sig, &sa, &was) == 0 ? was.sa_handler : SIG_ERR;
}
MP_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler)
{
	return __sysv_signal(sig, handler);
}

/* System V's sigset, as POSIX has it: `disp` SIG_HOLD adds sig to the thread's mask and
 * leaves its action; any other sets the action (the signal blocked while its handler
 * runs) and takes sig out of the mask. Returns SIG_HOLD when sig was in the mask, else
 * the action it had. Through memprof's sigaction, as __sysv_signal. */
MP_EXPORT sighandler_t sigset(int sig, sighandler_t disp)
{
	if (init_bad_signal(sig, disp))
		return SIG_ERR;
	sigset_t one, mask;
	sigemptyset(&one);
	sigaddset(&one, sig);
	struct sigaction sa, was;
	if (disp == SIG_HOLD) {
		if (pthread_sigmask(SIG_BLOCK, &one, &mask) != 0 || sigaction(sig, NULL, &was) != 0)
			return SIG_ERR;
	} else {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = disp;
		if (sigaction(sig, &sa, &was) != 0 || pthread_sigmask(SIG_UNBLOCK, &one, &mask) != 0)
			return SIG_ERR;
	}
	return sigismember(&mask, sig) ? SIG_HOLD : was.sa_handler;
}

/* libmemprof_fini.so (fini.c) writes everything at exit, after the destructors of the
 * program's libraries: libmemprof.so's own destructor then leaves it to it. */
static bool init_fini_later;

static void init_fini_last(void)
{
	writer_final_flush();
}

static void init_load_fini(void)
{
	Dl_info di;
	char path[4096];
	if (!dladdr((void *)init_fini_last, &di) || !di.dli_fname || !strrchr(di.dli_fname, '/'))
		return;
	int dir = (int)(strrchr(di.dli_fname, '/') - di.dli_fname);
	if ((size_t)snprintf(path, sizeof path, "%.*s/libmemprof_fini.so", dir, di.dli_fname) >= sizeof path)
		return;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	void (*set)(void (*)(void)) = h ? (void (*)(void (*)(void)))dlsym(h, "memprof_fini_set") : NULL;
	if (set) {
		set(init_fini_last);
		init_fini_later = true;
	}
}

/* ---- constructor and destructor ------------------------------------------------------------ */

__attribute__((constructor)) static void init_main(void)
{
	mp_guard_enter();
	real_init();
	real_cxx_init();
	init_exec_empty_remove();
	fds_init();
	clock_init();
	config_read();
	if (mem_init() < 0 || thread_init() < 0 || stack_init() < 0) {
		mp_log("cannot initialize; not recording");
		goto out;
	}
	native_init();
	record_max_depth = config.max_depth;
	unwind_check = config.check_unwind;
	sampler_interval_ms = config.interval_ms;
	writer_flush_ms = config.flush_ms;
	record_sample_bytes = config.sample_bytes;
	if (record_sampling_init() < 0) {
		mp_log("cannot allocate the sampling map; not recording");
		goto out;
	}

	char pidbuf[32];
	snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
	const char *root = getenv("MEMPROF_ROOT_PID");
	bool is_root = !root || !strcmp(root, pidbuf);
	bool after_exec = root && is_root;
	const char *prev_py = getenv("MEMPROF_ROOT_PYTHON");
	const char *root_file = getenv("MEMPROF_ROOT_FILE");
	if (root_file && strlen(root_file) < sizeof init_root_file)
		strcpy(init_root_file, root_file);
	init_is_python = python_present();
	bool follow;
	switch (config.follow) {
	case CONFIG_FOLLOW_ALL:
		follow = true;
		break;
	case CONFIG_FOLLOW_ROOT:
		follow = is_root;
		break;
	default:
		follow = init_is_python || (is_root && !(after_exec && prev_py && *prev_py == '1'));
		break;
	}
	if (!root)
		setenv("MEMPROF_ROOT_PID", pidbuf, 1);
	if (!follow)
		goto out;
	if (is_root)
		setenv("MEMPROF_ROOT_PYTHON", init_is_python ? "1" : "0", 1);
	bool want_native = config.native == 1;
	/* an unsupported Python is refused (one line on stderr) and runs untouched */
	if (init_is_python && python_attach(want_native) < 0)
		goto out;
	/* the new image of the root takes the root's file over from a wrapper (a shell shim);
	 * any other program's profile is kept: the new image gets a name of its own */
	const char *prev_keep = getenv("MEMPROF_ROOT_KEEP");
	bool replace = after_exec && config.follow != CONFIG_FOLLOW_ALL && !(prev_keep && *prev_keep == '1');
	/* this image's profile is kept when it execs (not a wrapper's, taken over) */
	bool keeps = init_is_python || !init_is_wrapper();
	if (is_root)
		setenv("MEMPROF_ROOT_KEEP", keeps ? "1" : "0", 1);
	if (init_start_recording(replace, is_root) < 0)
		goto out;
	init_followed = true;
	init_load_fini();
	/* `memprof run` execs the program with this: the process it started (and an image it
	 * execs, which takes its file over) says which file it wrote */
	const char *announce = getenv("MEMPROF_RUN_ANNOUNCE");
	if (is_root && announce && *announce == '1') {
		/* named as the pattern names it: the file taken over from a wrapper is known by
		 * its absolute path, shown relative to the working directory when it is in it */
		char cwd[4096];
		size_t n = getcwd(cwd, sizeof cwd) ? strlen(cwd) : 0;
		bool inside = n > 1 && init_path[0] == '/' && strncmp(init_path, cwd, n) == 0 && init_path[n] == '/';
		writer_announce(inside ? init_path + n + 1 : init_path, keeps);
	}
	/* In Python, once the interpreter has read the handlers it starts with (python.c,
	 * python_pending): it reads ours as "not the default", and signal.getsignal() would
	 * say None instead of SIG_DFL. */
	if (!init_is_python)
		init_signals();
	pthread_atfork(init_fork_prepare, init_fork_parent, init_fork_child);
	if (config.verbose && is_root && !after_exec)
		mp_log("recording to %s", init_path);
out:
	mp_unguard();
}

__attribute__((destructor)) static void init_fini(void)
{
	if (!init_fini_later)
		writer_final_flush();
}
