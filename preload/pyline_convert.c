/* CPython 3.9's and 3.10's line tables as 3.11's location tables (pyline_convert.h).
 *
 * 3.10's co_linetable (its Objects/lnotab_notes.txt) is a sequence of byte pairs, each a
 * range of the bytecode: the range's length in bytes (0-254: a longer range is split)
 * and the change of line from the previous range, a signed byte (-127..127: a larger
 * change is split over ranges of length 0), or -128 for a range without a line, which
 * leaves the running line as it is. The running line starts at co_firstlineno; ranges of
 * length 0 change it without covering any instruction.
 *
 * 3.11's entries (analyzer/pyline.c) cover 1 to 8 code units of 2 bytes each. A range
 * with a line becomes entries of form 13 (no columns, a signed varint line delta): the
 * first carries the change of line, with whatever ranges of length 0 and ranges without
 * a line left pending before it, the rest 0; a range without a line becomes entries of
 * form 15, which carry no change.
 *
 * 3.9's co_lnotab is a sequence of byte pairs too, but each is a change of position (0-255
 * bytes) and then of line (a signed byte): the instructions from one position to the next
 * have the line reached at the first, and those from the last position to the end of the
 * code the last line (PyCode_Addr2Line). Every instruction has a line. */
#include "pyline_convert.h"

#include <stdbool.h>

enum {
	PYLINE310_NO_LINE = -128,
	PYLINE_CODE_NO_COLUMNS = 13,
	PYLINE_CODE_NONE = 15,
	PYLINE_UNITS_MAX = 8,
};

size_t pyline310_bound(size_t len)
{
	/* a pair covers up to 128 code units (254 bytes and an odd byte carried): 16 entries
	 * of 2 bytes, the first with a varint of up to 11 bytes */
	return (len / 2 + 1) * 48;
}

static size_t pyline_svarint(uint8_t *out, int64_t delta)
{
	uint64_t mag = delta < 0 ? (uint64_t)0 - (uint64_t)delta : (uint64_t)delta;
	uint64_t u = mag << 1 | (delta < 0);
	size_t n = 0;
	while (u >= 0x40) {
		out[n++] = (uint8_t)(0x40 | (u & 0x3f));
		u >>= 6;
	}
	out[n++] = (uint8_t)u;
	return n;
}

/* Entries for the code units from *done up to byte `end`: with a line (the first carrying
 * *pending, the change of line not yet written) or without one. */
static size_t pyline_units(uint8_t *out, uint64_t end, uint64_t *done, bool located, int64_t *pending)
{
	size_t o = 0;
	for (uint64_t units = end / 2 - *done; units;) {
		unsigned u = units > PYLINE_UNITS_MAX ? PYLINE_UNITS_MAX : (unsigned)units;
		if (located) {
			out[o++] = (uint8_t)(0x80 | PYLINE_CODE_NO_COLUMNS << 3 | (u - 1));
			o += pyline_svarint(out + o, *pending);
			*pending = 0;
		} else {
			out[o++] = (uint8_t)(0x80 | PYLINE_CODE_NONE << 3 | (u - 1));
		}
		units -= u;
		*done += u;
	}
	return o;
}

size_t pyline310_convert(const uint8_t *in, size_t len, uint8_t *out)
{
	size_t o = 0;
	int64_t pending = 0;     /* line change not yet written */
	uint64_t end = 0, done = 0; /* bytes covered by 3.10's ranges; code units written */
	for (size_t i = 0; i + 1 < len; i += 2) {
		int ldelta = (int8_t)in[i + 1];
		bool located = ldelta != PYLINE310_NO_LINE;
		end += in[i];
		if (located)
			pending += ldelta;
		o += pyline_units(out + o, end, &done, located, &pending);
	}
	return o;
}

size_t pyline39_bound(size_t len, size_t code_len)
{
	/* as 3.10's, and the last line's entries to the end of the code */
	return pyline310_bound(len) + code_len / 8 + 16;
}

size_t pyline39_convert(const uint8_t *in, size_t len, size_t code_len, uint8_t *out)
{
	size_t o = 0;
	int64_t pending = 0;
	uint64_t end = 0, done = 0;
	for (size_t i = 0; i + 1 < len; i += 2) {
		end += in[i];
		if (end > code_len) /* (past the code: no instruction is there) */
			end = code_len;
		o += pyline_units(out + o, end, &done, true, &pending);
		pending += (int8_t)in[i + 1];
	}
	return o + pyline_units(out + o, code_len, &done, true, &pending);
}
