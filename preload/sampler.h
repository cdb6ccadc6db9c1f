/* The sampler thread: RSS from /proc/self/statm every MEMPROF_INTERVAL_MS, handed to the
 * writer. (The heap curve is computed exactly by the analyzer from the events.) */
#ifndef MEMPROF_PRELOAD_SAMPLER_H
#define MEMPROF_PRELOAD_SAMPLER_H

#include <stdbool.h>
#include <sys/types.h>

extern unsigned sampler_interval_ms;
int sampler_start(void);
/* Takes a last sample and stops the thread. */
void sampler_stop(void);
void sampler_fork_child(void);
/* memprof's file is lost for good (writer.c): no sample will be written, and the
 * sampler's descriptor is given back at its next tick (its number the program's: fds.h). */
void sampler_give_up(void);
/* From a handler of a signal that ends the process, on a thread that was inside memprof
 * (init.c): the sampler thread writes everything recorded, then sends `sig` to thread
 * `tid` with the default action restored. False when the sampler is not running (the
 * caller must flush itself). Async-signal-safe. */
bool sampler_defer_fatal(int sig, pid_t tid);
/* The main thread is ending by pthread_exit: from now on the sampler looks for the end of
 * the program's last thread, and then calls exit(0) as that thread would have. */
void sampler_main_exited(void);

#endif
