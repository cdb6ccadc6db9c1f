/* progress: a progress bar on stderr for commands that take a while.
 *
 * Shown only when stderr is a terminal and the command has been running for more than
 * a second (MEMPROF_PROGRESS_AFTER_MS overrides the delay, for tests); never on a pipe
 * or file, so scripts and the "one line on stderr" rule for errors are unaffected.
 * The bar is erased when the work is done, before anything else is written. */
#ifndef MEMPROF_ANALYZER_PROGRESS_H
#define MEMPROF_ANALYZER_PROGRESS_H

#include <stdint.h>

/* Starts the clock (call once, at program start). */
void progress_start(void);
/* `done` of `total` units of work are finished (redraws at most every 100 ms). */
void progress_update(uint64_t done, uint64_t total);
/* Erases the bar if one is shown. */
void progress_end(void);

#endif
