/* CPython code-object line tables, decoded offline from the copy the capture made. */
#ifndef MEMPROF_ANALYZER_PYLINE_H
#define MEMPROF_ANALYZER_PYLINE_H

#include <stddef.h>
#include <stdint.h>

/* Line executed at instruction offset `lasti` (in 2-byte code units) of a code object
 * whose co_linetable (CPython 3.11+ location table) and co_firstlineno are given, as
 * PyCode_Addr2Line(code, lasti * 2) answers. Returns -1 for no line or damaged table. */
int pyline_addr2line(const uint8_t *table, size_t len, int firstlineno, uint32_t lasti);

/* Smallest and largest line any instruction of the code object is on. Returns 0, or -1
 * for a damaged table or one without any line. */
int pyline_range(const uint8_t *table, size_t len, int firstlineno, int *min, int *max);

#endif
