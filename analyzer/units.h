/* units: human-readable sizes and counts for the text outputs. */
#ifndef MEMPROF_ANALYZER_UNITS_H
#define MEMPROF_ANALYZER_UNITS_H

#include <stddef.h>
#include <stdint.h>

#define UNITS_BUF 32

/* "512 B", "1.5 KiB", "12.0 MiB", "3.25 GiB". Returns buf. */
const char *units_bytes(char buf[UNITS_BUF], uint64_t bytes);
/* "1,234,567". Returns buf. */
const char *units_count(char buf[UNITS_BUF], uint64_t n);
/* The plural ending of a count of n: "" for 1, "s" for the rest. */
static inline const char *units_s(uint64_t n)
{
	return n == 1 ? "" : "s";
}

#endif
