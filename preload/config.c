/* Environment settings (see config.h and the README's table). */
#include "config.h"

/* MEMPROF_SAMPLE_BYTES at most 1 TiB: larger would record next to nothing */
#define CONFIG_SAMPLE_BYTES_MAX (1ull << 40)
#include "mp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

config_t config;

static unsigned config_uint(const char *name, unsigned def, unsigned lo, unsigned hi)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	unsigned long x = strtoul(v, &end, 10);
	if (*end || x < lo || x > hi) {
		mp_log("%s=%s is not a number from %u to %u; using %u", name, v, lo, hi, def);
		return def;
	}
	return (unsigned)x;
}

void config_read(void)
{
	const char *v;
	config.output = getenv("MEMPROF_OUTPUT");
	if (config.output && !*config.output)
		config.output = NULL;
	config.native = -1;
	if ((v = getenv("MEMPROF_NATIVE")) && *v)
		config.native = strcmp(v, "0") != 0;
	config.max_depth = config_uint("MEMPROF_MAX_DEPTH", 64, 1, 256);
	config.interval_ms = config_uint("MEMPROF_INTERVAL_MS", 10, 1, 3600000);
	config.flush_ms = config_uint("MEMPROF_FLUSH_MS", 100, 10, 10000);
	config.sample_bytes = 0;
	if ((v = getenv("MEMPROF_SAMPLE_BYTES")) && *v) {
		char *end;
		errno = 0;
		config.sample_bytes = strtoull(v, &end, 10);
		/* strtoull takes "-1" as 2^64 - 1: a sample per 16 EiB, nothing recorded */
		if (*end || errno || v[strspn(v, " \t")] == '-' || config.sample_bytes > CONFIG_SAMPLE_BYTES_MAX) {
			mp_log("MEMPROF_SAMPLE_BYTES=%s is not a number of bytes from 0 to 2^40; recording every allocation",
			       v);
			config.sample_bytes = 0;
		}
	}
	config.follow = CONFIG_FOLLOW_PYTHON;
	if ((v = getenv("MEMPROF_FOLLOW")) && *v) {
		if (!strcmp(v, "all"))
			config.follow = CONFIG_FOLLOW_ALL;
		else if (!strcmp(v, "root"))
			config.follow = CONFIG_FOLLOW_ROOT;
		else if (strcmp(v, "python"))
			mp_log("MEMPROF_FOLLOW=%s is not python, all or root; using python", v);
	}
	config.verbose = (v = getenv("MEMPROF_VERBOSE")) && *v && strcmp(v, "0");
	config.check_unwind = (v = getenv("MEMPROF_CHECK_UNWIND")) && *v && strcmp(v, "0");
}
