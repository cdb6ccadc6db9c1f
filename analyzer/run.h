/* run: `memprof run [OPTIONS] PROGRAM [ARGS...]`, a program profiled without setting
 * LD_PRELOAD by hand (see run.c). */
#ifndef MEMPROF_RUN_H
#define MEMPROF_RUN_H

#include <stdio.h>

/* argv[0] is "run"; returns the exit status for main (the program's), 1 when it could not
 * be started, 2 for a usage error. Does not return when the program was killed by a
 * signal: this process dies of the same signal. */
int run_main(int argc, char **argv);
void run_usage(FILE *f);

#endif
