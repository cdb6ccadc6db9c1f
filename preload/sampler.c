/* The RSS sampler thread (see sampler.h). */
#define _GNU_SOURCE
#include "sampler.h"
#include "clock.h"
#include "fds.h"
#include "mp.h"
#include "record.h"
#include "writer.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

unsigned sampler_interval_ms = 10;
static pthread_t sampler_thread;
static atomic_int sampler_running, sampler_stopping;
static atomic_int sampler_fd = -1;
static atomic_int sampler_given_up;

static int sampler_open(void)
{
	static const char path[] = "/proc/self/statm";
	return fds_take(open(path, O_RDONLY | O_CLOEXEC), path);
}
/* posted to wake the thread before its interval is over: a fatal signal to pass on */
static sem_t sampler_wake;
static atomic_int sampler_fatal_sig, sampler_fatal_tid;

static void sampler_take(void)
{
	/* before the sample's stamp: a GIL event made after it cannot carry an older one */
	record_gil_stamp_expire();
	char buf[128];
	int fd = atomic_load(&sampler_fd);
	if (mp_unlikely(atomic_load(&sampler_given_up))) {
		if (fd >= 0 && pthread_equal(pthread_self(), sampler_thread)) {
			atomic_store(&sampler_fd, -1);
			fds_give_back(fd);
		}
		return;
	}
	if (fd < 0 || !fds_intact(fd)) {
		/* closed behind memprof's back (fds.h): its number is not memprof's any more;
		 * opened again (at each sample until it can be) */
		if (!pthread_equal(pthread_self(), sampler_thread))
			return;
		if (fd >= 0)
			fds_release(fd);
		fd = sampler_open();
		atomic_store(&sampler_fd, fd);
	}
	ssize_t n = fd >= 0 ? pread(fd, buf, sizeof buf - 1, 0) : -1;
	if (n <= 0)
		return;
	buf[n] = 0;
	char *p = buf;
	strtoull(p, &p, 10); /* size */
	unsigned long long resident = strtoull(p, NULL, 10);
	writer_add_sample(clock_now(), resident * (unsigned long long)sysconf(_SC_PAGESIZE));
}

static atomic_int sampler_main_gone;

void sampler_main_exited(void)
{
	atomic_store(&sampler_main_gone, 1);
}

/* Whether a thread of the program (not memprof's) is still running: /proc/self/task
 * lists every thread, the main thread that ended by pthread_exit as a zombie ('Z') until
 * the whole process ends. */
static bool sampler_program_alive(pid_t self)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return true;
	bool alive = false;
	pid_t writer = writer_tid();
	struct dirent *e;
	while (!alive && (e = readdir(d)) != NULL) {
		pid_t tid = (pid_t)strtol(e->d_name, NULL, 10);
		if (tid <= 0 || tid == self || tid == writer)
			continue;
		char path[64], buf[512];
		snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone meanwhile */
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		const char *paren = strrchr(buf, ')');
		alive = !paren || (paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X');
	}
	closedir(d);
	return alive;
}

static void *sampler_main(void *arg)
{
	mp_guard = 1;
	pthread_setname_np(pthread_self(), "memprof-sample");
	while (!atomic_load(&sampler_stopping)) {
		sampler_take();
		struct timespec ts = clock_deadline((uint64_t)sampler_interval_ms * 1000000u);
		while (sem_clockwait(&sampler_wake, CLOCK_MONOTONIC, &ts) != 0 && errno == EINTR)
			;
		/* the main thread ended by pthread_exit and so has every other thread of the
		 * program: the process ends as glibc ends it after its last thread */
		if (atomic_load(&sampler_main_gone) && !sampler_program_alive((pid_t)syscall(SYS_gettid))) {
			mp_guard = 0; /* the exit handlers and destructors are the program's: recorded */
			exit(0);
		}
		int sig = atomic_load(&sampler_fatal_sig);
		if (sig) {
			writer_emergency_flush(2000);
			signal(sig, SIG_DFL);
			/* back to the thread it was sent to: it does not block it; if that thread
			 * is gone, to the process */
			if (syscall(SYS_tgkill, getpid(), atomic_load(&sampler_fatal_tid), sig) != 0)
				kill(getpid(), sig);
			break;
		}
	}
	return NULL;
}

bool sampler_defer_fatal(int sig, pid_t tid)
{
	if (!atomic_load(&sampler_running) || pthread_equal(pthread_self(), sampler_thread))
		return false;
	atomic_store(&sampler_fatal_tid, (int)tid);
	atomic_store(&sampler_fatal_sig, sig);
	sem_post(&sampler_wake);
	return true;
}

int sampler_start(void)
{
	int fd = sampler_open();
	atomic_store(&sampler_fd, fd);
	if (fd < 0)
		return -1;
	atomic_store(&sampler_stopping, 0);
	atomic_store(&sampler_fatal_sig, 0);
	sem_init(&sampler_wake, 0, 0);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&sampler_thread, NULL, sampler_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		atomic_store(&sampler_running, 1);
	return rc ? -1 : 0;
}

void sampler_give_up(void)
{
	atomic_store(&sampler_given_up, 1);
}

void sampler_stop(void)
{
	if (!atomic_exchange(&sampler_running, 0))
		return;
	atomic_store(&sampler_stopping, 1);
	sampler_take();
	/* not joined: at exit the thread may already be gone, and a join could block */
}

void sampler_fork_child(void)
{
	atomic_store(&sampler_main_gone, 0);
	atomic_store(&sampler_running, 0);
	atomic_store(&sampler_given_up, 0); /* (the child's file is its own) */
	if (sampler_fd >= 0)
		close(sampler_fd);
	sampler_fd = -1;
}
