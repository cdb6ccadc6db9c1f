/* Settings that both the library (MEMPROF_* variables) and `memprof run` (its options)
 * read, checked the same way by both. */
#ifndef MEMPROF_SETTINGS_H
#define MEMPROF_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

/* MEMPROF_SAMPLE_BYTES, --sample-bytes: at most 1 TiB (larger would record next to
 * nothing). */
#define MEMPROF_SAMPLE_BYTES_MAX (1ull << 40)

/* A decimal number from 0 to max, digits only (no sign, no spaces); false otherwise. */
static inline bool memprof_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (d > max || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

#endif
