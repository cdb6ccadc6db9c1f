/* progress: see progress.h. One bar per process, so the state is static. */
#include "progress.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_WIDTH 40

static struct {
	bool enabled; /* stderr is a terminal */
	bool shown;   /* a bar is on the screen */
	double start, delay, last_draw;
	int last_percent;
} progress;

static double progress_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_start(void)
{
	progress.enabled = isatty(STDERR_FILENO) == 1;
	progress.start = progress_now();
	progress.delay = 1.0;
	progress.last_percent = -1;
	const char *v = getenv("MEMPROF_PROGRESS_AFTER_MS");
	if (v && *v)
		progress.delay = atof(v) / 1000.0;
}

void progress_update(uint64_t done, uint64_t total)
{
	if (!progress.enabled || total == 0)
		return;
	double now = progress_now();
	if (now - progress.start < progress.delay)
		return;
	if (done > total)
		done = total;
	int percent = (int)(100 * done / total);
	if (progress.shown && (percent == progress.last_percent || now - progress.last_draw < 0.1))
		return;
	int fill = (int)(PROGRESS_WIDTH * done / total);
	char bar[PROGRESS_WIDTH + 1];
	for (int i = 0; i < PROGRESS_WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[PROGRESS_WIDTH] = '\0';
	fprintf(stderr, "\rmemprof: reading events [%s] %3d%% (%llu/%llu chunks)", bar, percent,
		(unsigned long long)done, (unsigned long long)total);
	fflush(stderr);
	progress.shown = true;
	progress.last_percent = percent;
	progress.last_draw = now;
}

void progress_end(void)
{
	if (!progress.shown)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	progress.shown = false;
}
