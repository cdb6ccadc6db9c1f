/* Environment settings (see config.h and the README's table). */
#include "config.h"

#include "mp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memprof/settings.h>

config_t config;

/* A setting memprof did not take: said once (mp_log), and the variable set to what
 * memprof uses instead, so that the processes the program starts, which read it again,
 * do the same and do not say it again. */
static void config_replaced(const char *name, const char *value)
{
	setenv(name, value, 1);
}

static unsigned config_uint(const char *name, unsigned def, unsigned lo, unsigned hi)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	uint64_t x;
	if (!memprof_parse_u64(v, hi, &x) || x < lo) {
		mp_log("%s=%s is not a number from %u to %u; using %u", name, v, lo, hi, def);
		char buf[16];
		snprintf(buf, sizeof buf, "%u", def);
		config_replaced(name, buf);
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
	uint64_t sample;
	if ((v = getenv("MEMPROF_SAMPLE_BYTES")) && *v) {
		if (memprof_parse_u64(v, MEMPROF_SAMPLE_BYTES_MAX, &sample))
			config.sample_bytes = sample;
		else {
			mp_log("MEMPROF_SAMPLE_BYTES=%s is not a number of bytes from 0 to 2^40; recording every allocation",
			       v);
			config_replaced("MEMPROF_SAMPLE_BYTES", "0");
		}
	}
	config.follow = CONFIG_FOLLOW_PYTHON;
	if ((v = getenv("MEMPROF_FOLLOW")) && *v) {
		if (!strcmp(v, "all"))
			config.follow = CONFIG_FOLLOW_ALL;
		else if (!strcmp(v, "root"))
			config.follow = CONFIG_FOLLOW_ROOT;
		else if (strcmp(v, "python")) {
			mp_log("MEMPROF_FOLLOW=%s is not python, all or root; using python", v);
			config_replaced("MEMPROF_FOLLOW", "python");
		}
	}
	config.verbose = (v = getenv("MEMPROF_VERBOSE")) && *v && strcmp(v, "0");
	config.check_unwind = (v = getenv("MEMPROF_CHECK_UNWIND")) && *v && strcmp(v, "0");
}
