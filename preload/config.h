/* Configuration from the environment, read once in the constructor (never in a hook). */
#ifndef MEMPROF_PRELOAD_CONFIG_H
#define MEMPROF_PRELOAD_CONFIG_H

#include <stdbool.h>

typedef enum config_follow {
	CONFIG_FOLLOW_PYTHON, /* Python processes, and the root process */
	CONFIG_FOLLOW_ALL,
	CONFIG_FOLLOW_ROOT,
} config_follow_t;

typedef struct config {
	const char *output;   /* MEMPROF_OUTPUT, NULL: memprof.%p.db */
	int native;           /* MEMPROF_NATIVE: -1 unset, 0, 1 */
	unsigned max_depth;   /* MEMPROF_MAX_DEPTH */
	unsigned interval_ms; /* MEMPROF_INTERVAL_MS */
	unsigned flush_ms;    /* MEMPROF_FLUSH_MS */
	config_follow_t follow; /* MEMPROF_FOLLOW */
	unsigned long long sample_bytes; /* MEMPROF_SAMPLE_BYTES, 0: every allocation */
	bool verbose;         /* MEMPROF_VERBOSE: say where the file goes */
	bool check_unwind;    /* MEMPROF_CHECK_UNWIND: unwind mixed stacks both ways, count differences */
} config_t;

extern config_t config;
void config_read(void);

#endif
