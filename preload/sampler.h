/* The sampler thread: RSS from /proc/self/statm every MEMPROF_INTERVAL_MS, handed to the
 * writer. (The heap curve is computed exactly by the analyzer from the events.) */
#ifndef MEMPROF_PRELOAD_SAMPLER_H
#define MEMPROF_PRELOAD_SAMPLER_H

extern unsigned sampler_interval_ms;
int sampler_start(void);
/* Takes a last sample and stops the thread. */
void sampler_stop(void);
void sampler_fork_child(void);

#endif
