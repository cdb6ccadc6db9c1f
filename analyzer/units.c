/* units: binary (IEC) units, three significant digits or so. */
#include "units.h"

#include <inttypes.h>
#include <stdio.h>

const char *units_bytes(char buf[UNITS_BUF], uint64_t bytes)
{
	static const char *const names[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	if (bytes < 1024) {
		snprintf(buf, UNITS_BUF, "%" PRIu64 " B", bytes);
		return buf;
	}
	double v = (double)bytes / 1024;
	unsigned u = 0;
	while (v >= 1024 && u + 1 < sizeof names / sizeof *names) {
		v /= 1024;
		u++;
	}
	snprintf(buf, UNITS_BUF, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, names[u]);
	return buf;
}

const char *units_count(char buf[UNITS_BUF], uint64_t n)
{
	char digits[UNITS_BUF];
	int len = snprintf(digits, sizeof digits, "%" PRIu64, n);
	int o = 0;
	for (int i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}
