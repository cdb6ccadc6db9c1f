/* Diagnostics of the preload library: formatted into a stack buffer and written with
 * write(2), so that they never allocate and can be used inside hooks. */
#include "mp.h"
#include "clock.h"
#include "fds.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static void log_v(const char *fmt, va_list ap)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "memprof: ");
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + ((size_t)m < sizeof buf - (size_t)n - 1 ? (size_t)m : sizeof buf - (size_t)n - 2);
	buf[len++] = '\n';
	int fd = fds_stderr();
	ssize_t r = fd >= 0 ? write(fd, buf, len) : 0;
	(void)r;
}

void mp_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_v(fmt, ap);
	va_end(ap);
}

static char log_stop_reason[256];
static uint64_t log_stop_ticks;
static atomic_int log_stop_ready;

void mp_fail(const char *fmt, ...)
{
	static atomic_int said;
	atomic_store(&mp_recording, 0);
	if (atomic_exchange(&said, 1))
		return;
	log_stop_ticks = clock_now();
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(log_stop_reason, sizeof log_stop_reason, fmt, ap);
	va_end(ap);
	atomic_store_explicit(&log_stop_ready, 1, memory_order_release);
	mp_log("%s; recording stopped", log_stop_reason);
}

const char *mp_stopped(uint64_t *ticks)
{
	if (!atomic_load_explicit(&log_stop_ready, memory_order_acquire))
		return NULL;
	*ticks = log_stop_ticks;
	return log_stop_reason;
}
