/* run: `memprof run [OPTIONS] PROGRAM [ARGS...]`, a program profiled without setting
 * LD_PRELOAD by hand (see run.c). */
#ifndef MEMPROF_RUN_H
#define MEMPROF_RUN_H

#include <stdio.h>

/* argv[0] is "run"; execs the program, or returns the exit status for main: 1 when it
 * could not prepare, 127/126 when the program could not be started, 2 for a usage error. */
int run_main(int argc, char **argv);
void run_usage(FILE *f);

#endif
