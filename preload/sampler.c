/* The RSS sampler thread (see sampler.h). */
#define _GNU_SOURCE
#include "sampler.h"
#include "clock.h"
#include "mp.h"
#include "record.h"
#include "writer.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

unsigned sampler_interval_ms = 10;
static pthread_t sampler_thread;
static atomic_int sampler_running, sampler_stopping;
static int sampler_fd = -1;

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
		struct timespec ts = {sampler_interval_ms / 1000, (long)(sampler_interval_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int sampler_start(void)
{
	sampler_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (sampler_fd < 0)
		return -1;
	atomic_store(&sampler_stopping, 0);
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
