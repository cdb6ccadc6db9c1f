/* The names of profile files (preload/init.c claims one).
 * A pattern (MEMPROF_OUTPUT, default MP_DEFAULT_OUTPUT) names the file with %p as the pid;
 * if that name is taken, the next free of name.1.db, name.2.db, ... (the number goes
 * before a final ".db", else at the end). */
#ifndef MEMPROF_PRELOAD_NAMING_H
#define MEMPROF_PRELOAD_NAMING_H

#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#define MP_DEFAULT_OUTPUT "memprof.%p.db"
#define MP_NAME_TRIES 10000 /* name, name.1.db, ... name.9999.db */

/* pattern with each %p replaced by pid, into out (cut short rather than overflowing) */
static inline void mp_name_expand(const char *pattern, pid_t pid, char *out, size_t cap)
{
	size_t k = 0;
	for (const char *p = pattern; *p && k + 24 < cap; p++) {
		if (p[0] == '%' && p[1] == 'p') {
			k += (size_t)snprintf(out + k, cap - k, "%d", (int)pid);
			p++;
		} else {
			out[k++] = *p;
		}
	}
	out[k] = 0;
}

/* The extension kept after a number: ".db", or none. */
static inline const char *mp_name_ext(const char *base)
{
	size_t bl = strlen(base);
	return bl > 3 && !strcmp(base + bl - 3, ".db") ? ".db" : "";
}

/* The i-th candidate name of base: base itself for 0, else name.i.db. */
static inline void mp_name_candidate(const char *base, int i, char *out, size_t cap)
{
	if (i == 0) {
		snprintf(out, cap, "%s", base);
	} else {
		const char *ext = mp_name_ext(base);
		snprintf(out, cap, "%.*s.%d%s", (int)(strlen(base) - strlen(ext)), base, i, ext);
	}
}

#endif
