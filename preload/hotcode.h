/* libmemprof.so's start-up code and read-only pages given back once the program runs
 * (hotcode.c). */
#ifndef MEMPROF_PRELOAD_HOTCODE_H
#define MEMPROF_PRELOAD_HOTCODE_H

#include <stdint.h>

/* The writer's cycles call it (now: clock_mono_ns()): it acts at the first, as the
 * program starts, then every HOTCODE_EVERY_NS. */
void hotcode_tick(uint64_t now);
/* memprof's file is lost for good (writer.c): no more drops, /proc/self/pagemap closed
 * (its number the program's: fds.h). The writer's thread. */
void hotcode_stop(void);
/* A fork's child starts over: its first drop at its writer's first cycle, through its
 * own /proc/self/pagemap. */
void hotcode_fork_child(void);

#endif
