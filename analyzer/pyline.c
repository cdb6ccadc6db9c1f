/* Offline decoder for CPython 3.11 location tables (co_linetable).
 *
 * The capture copies each code object's co_linetable and co_firstlineno verbatim, so
 * the analyzer can map (code, instruction offset) to a source line without a Python
 * interpreter. The format (CPython Objects/locations.md) is a sequence of entries, each
 * covering 1..8 code units:
 *
 *   first byte   1 ccc c lll   (high bit set; 4-bit code; length - 1 in code units)
 *   code 0..9    short form, same line, 1 column byte follows
 *   code 10..12  one-line form, line += code - 10, 2 column bytes follow
 *   code 13      no columns, line += signed varint
 *   code 14      long form, line += signed varint, then 3 varints (end line, columns)
 *   code 15      no location: the instructions have no line (line delta 0)
 *
 * Varints are little-endian 6-bit chunks with 0x40 as continuation bit; a signed varint
 * stores the magnitude shifted left by one with the sign in bit 0. The running line
 * starts at co_firstlineno and every entry's delta applies to it, no-line entries too.
 *
 * The walk is a single linear scan, as PyCode_Addr2Line does. Unlike CPython, which
 * trusts the table, every byte read is bounds-checked and entries are parsed strictly
 * (continuation bytes must not have the high bit set, the next entry must start with
 * it), so a truncated or corrupted table gives -1 instead of a wild read. On every table
 * CPython produces both walks agree.
 */
#include "pyline.h"

#include <stdbool.h>

enum {
	PYLINE_CODE_ONE_LINE0 = 10,
	PYLINE_CODE_NO_COLUMNS = 13,
	PYLINE_CODE_LONG = 14,
	PYLINE_CODE_NONE = 15,
};

/* Reads an unsigned varint at *pos; false if it runs past len, into an entry start,
 * or is longer than any line number could need. */
static bool pyline_varint(const uint8_t *table, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t value = 0;
	unsigned shift = 0;

	for (;;) {
		if (*pos >= len || shift > 60)
			return false;
		uint8_t b = table[(*pos)++];
		if (b & 0x80)
			return false;
		value |= (uint64_t)(b & 0x3f) << shift;
		if (!(b & 0x40))
			break;
		shift += 6;
	}
	*out = value;
	return true;
}

static bool pyline_svarint(const uint8_t *table, size_t len, size_t *pos, int64_t *out)
{
	uint64_t u;

	if (!pyline_varint(table, len, pos, &u))
		return false;
	*out = (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
	return true;
}

/* Skips n plain (non entry-start) bytes. */
static bool pyline_skip(const uint8_t *table, size_t len, size_t *pos, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (*pos >= len || (table[*pos] & 0x80))
			return false;
		(*pos)++;
	}
	return true;
}

/* Decodes the entry at *pos: its length in code units, whether it has a line, and the
 * line delta. false for a damaged entry. */
static bool pyline_entry(const uint8_t *table, size_t len, size_t *pos, unsigned *units, bool *located,
			 int64_t *delta)
{
	uint8_t head = table[(*pos)++];
	if (!(head & 0x80))
		return false;
	unsigned code = (head >> 3) & 15;
	uint64_t ignored;
	*units = (head & 7) + 1u;
	*located = code != PYLINE_CODE_NONE;
	*delta = 0;
	if (code < PYLINE_CODE_ONE_LINE0)
		return pyline_skip(table, len, pos, 1);
	if (code < PYLINE_CODE_NO_COLUMNS) {
		*delta = code - PYLINE_CODE_ONE_LINE0;
		return pyline_skip(table, len, pos, 2);
	}
	if (code == PYLINE_CODE_NO_COLUMNS)
		return pyline_svarint(table, len, pos, delta);
	if (code == PYLINE_CODE_LONG)
		return pyline_svarint(table, len, pos, delta) && pyline_varint(table, len, pos, &ignored) &&
		       pyline_varint(table, len, pos, &ignored) && pyline_varint(table, len, pos, &ignored);
	return true;
}

int pyline_range(const uint8_t *table, size_t len, int firstlineno, int *min, int *max)
{
	int64_t line = firstlineno, lo = INT64_MAX, hi = INT64_MIN;
	size_t pos = 0;

	if (!table)
		return -1;
	while (pos < len) {
		unsigned units;
		bool located;
		int64_t delta;
		if (!pyline_entry(table, len, &pos, &units, &located, &delta))
			return -1;
		line += delta;
		if (line > INT32_MAX || line < INT32_MIN)
			return -1;
		if (located && line > 0) {
			lo = line < lo ? line : lo;
			hi = line > hi ? line : hi;
		}
	}
	if (lo > hi)
		return -1;
	*min = (int)lo;
	*max = (int)hi;
	return 0;
}

int pyline_addr2line(const uint8_t *table, size_t len, int firstlineno, uint32_t lasti)
{
	/* Line numbers are kept in 64 bits so a hostile table cannot overflow them. */
	int64_t line = firstlineno;
	uint64_t start = 0; /* first code unit covered by the current entry */
	size_t pos = 0;

	if (!table)
		return -1;
	while (pos < len) {
		unsigned units;
		bool located;
		int64_t delta;
		if (!pyline_entry(table, len, &pos, &units, &located, &delta))
			return -1;
		line += delta;
		if (line > INT32_MAX || line < INT32_MIN)
			return -1;
		uint64_t end = start + units;
		if (lasti < end) {
			if (!located || line < 0)
				return -1;
			return (int)line;
		}
		start = end;
	}
	return -1;
}
