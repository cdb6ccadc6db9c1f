/* The RSS sampler thread (see sampler.h). */
#define _GNU_SOURCE
#include "sampler.h"
#include "clock.h"
#include "mp.h"
#include "record.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

unsigned sampler_interval_ms = 10;
static pthread_t sampler_thread;
static atomic_int sampler_running, sampler_stopping;
static int sampler_fd = -1;
/* posted to wake the thread before its interval is over: a fatal signal to pass on */
static sem_t sampler_wake;
static atomic_int sampler_fatal_sig, sampler_fatal_tid;

static void sampler_take(void)
{
	/* before the sample's stamp: a GIL event made after it cannot carry an older one */
	record_gil_stamp_expire();
	char buf[128];
	ssize_t n = pread(sampler_fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return;
	buf[n] = 0;
	char *p = buf;
	strtoull(p, &p, 10); /* size */
	unsigned long long resident = strtoull(p, NULL, 10);
	writer_add_sample(clock_now(), resident * (unsigned long long)sysconf(_SC_PAGESIZE));
}

static void *sampler_main(void *arg)
{
	mp_guard = 1;
	pthread_setname_np(pthread_self(), "memprof-sample");
	while (!atomic_load(&sampler_stopping)) {
		sampler_take();
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += sampler_interval_ms / 1000;
		ts.tv_nsec += (long)(sampler_interval_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (sem_clockwait(&sampler_wake, CLOCK_MONOTONIC, &ts) != 0 && errno == EINTR)
			;
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
	sampler_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (sampler_fd < 0)
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
	atomic_store(&sampler_running, 0);
	if (sampler_fd >= 0)
		close(sampler_fd);
	sampler_fd = -1;
}
