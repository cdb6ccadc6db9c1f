/* The line tables of CPython 3.9 (co_lnotab) and 3.10 (co_linetable), rewritten as
 * 3.11's location tables: the capture file holds 3.11's format whatever the version
 * (schema.h), so that one decoder (analyzer/pyline.c) reads them all. No Python header is
 * needed: tests/unit/test_pyline.c checks the result against each version's own
 * PyCode_Addr2Line. */
#ifndef MEMPROF_PRELOAD_PYLINE_CONVERT_H
#define MEMPROF_PRELOAD_PYLINE_CONVERT_H

#include <stddef.h>
#include <stdint.h>

/* The most bytes pyline310_convert writes for a table of len bytes. */
size_t pyline310_bound(size_t len);

/* Writes 3.10's table in[0 .. len) as a 3.11 location table at out (pyline310_bound(len)
 * bytes) and returns its length. The line of every code unit is 3.10's, none where 3.10
 * has none (PyCode_Addr2Line's -1), and the table ends where 3.10's does. */
size_t pyline310_convert(const uint8_t *in, size_t len, uint8_t *out);

/* The most bytes pyline39_convert writes for a table of len bytes, of code of code_len
 * bytes. */
size_t pyline39_bound(size_t len, size_t code_len);

/* Writes 3.9's co_lnotab in[0 .. len), of code code_len bytes long (co_code), as a 3.11
 * location table at out (pyline39_bound bytes) and returns its length: the line of every
 * code unit of the code is 3.9's. */
size_t pyline39_convert(const uint8_t *in, size_t len, size_t code_len, uint8_t *out);

#endif
