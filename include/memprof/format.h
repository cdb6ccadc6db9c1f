/* memprof record encoding: what the preload library writes and the analyzer reads.
 *
 * The capture side produces fixed-size mp_event_t records in per-thread blocks;
 * the writer thread encodes a run of one thread's events into a chunk (varint/delta
 * encoded, then zstd-compressed) stored as one row of the `events` table.
 *
 * Chunk payload (before compression), a sequence of records:
 *   tag      1 byte: low 4 bits = kind (MP_EV_*), high 4 bits = allocator (MP_AL_*)
 *   ts       varint: ticks since the previous record of the chunk (the first record:
 *            ticks since the chunk's `first_ts` column)
 *   ALLOC:   varint zigzag(addr - previous addr of the chunk), varint size, varint stack
 *   FREE:    varint zigzag(addr - previous addr of the chunk)
 *   END:     nothing more (the Python main program finished: "end of program")
 * Addresses start at 0 in every chunk, so chunks decode independently.
 */
#ifndef MEMPROF_FORMAT_H
#define MEMPROF_FORMAT_H

#include <stddef.h>
#include <stdint.h>

enum {
	MP_EV_ALLOC = 1,
	MP_EV_FREE = 2,
	MP_EV_END = 3,
};

/* Which function allocated: kept per event for `stats`. */
enum {
	MP_AL_MALLOC = 0,
	MP_AL_CALLOC = 1,
	MP_AL_REALLOC = 2,
	MP_AL_REALLOCARRAY = 3,
	MP_AL_POSIX_MEMALIGN = 4,
	MP_AL_ALIGNED_ALLOC = 5,
	MP_AL_MEMALIGN = 6,
	MP_AL_VALLOC = 7,
	MP_AL_PVALLOC = 8,
	MP_AL_PYMEM_RAW = 9,
	MP_AL_PYMEM_MEM = 10,
	MP_AL_PYMEM_OBJ = 11,
	MP_AL_COUNT = 12,
};

static const char *const mp_allocator_names[MP_AL_COUNT] = {
	"malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
	"memalign", "valloc", "pvalloc", "PyMem_RawMalloc", "PyMem_Malloc", "PyObject_Malloc",
};

/* One event as recorded on the program's thread (32 bytes). */
typedef struct mp_event {
	uint64_t ts;    /* clock ticks (see meta clock_*) */
	uint64_t addr;
	uint64_t size;  /* ALLOC only */
	uint32_t stack; /* ALLOC only: stack node id, 0 = empty stack */
	uint8_t kind;   /* MP_EV_* */
	uint8_t allocator; /* MP_AL_* (ALLOC only) */
	uint16_t pad;
} mp_event_t;

/* A stack node's frame: native instruction pointer (bit 63 clear), or a Python frame
 * (bit 63 set): code id in bits 32..62, instruction offset in code units in bits 0..31. */
#define MP_FRAME_PYTHON (UINT64_C(1) << 63)
static inline uint64_t mp_frame_python(uint32_t code_id, uint32_t lasti)
{
	return MP_FRAME_PYTHON | ((uint64_t)code_id << 32) | lasti;
}
static inline int mp_frame_is_python(uint64_t f) { return (f & MP_FRAME_PYTHON) != 0; }
static inline uint32_t mp_frame_code(uint64_t f) { return (uint32_t)((f >> 32) & 0x7fffffffu); }
static inline uint32_t mp_frame_lasti(uint64_t f) { return (uint32_t)f; }

/* Longest encoded record: tag + 4 varints of 10 bytes. */
#define MP_ENC_MAX_RECORD 41

static inline uint8_t *mp_put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint64_t mp_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t mp_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* Returns NULL on truncated or over-long input. */
static inline const uint8_t *mp_get_varint(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (p >= end)
			return NULL;
		uint8_t b = *p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return p;
		}
	}
	return NULL;
}

typedef struct mp_codec {
	uint64_t ts;
	uint64_t addr;
} mp_codec_t;

static inline void mp_codec_init(mp_codec_t *c, uint64_t first_ts)
{
	c->ts = first_ts;
	c->addr = 0;
}

/* Appends one record at p (room for MP_ENC_MAX_RECORD bytes); returns the new end.
 * Events of a chunk must come in non-decreasing ts order. */
static inline uint8_t *mp_encode_event(mp_codec_t *c, uint8_t *p, const mp_event_t *e)
{
	*p++ = (uint8_t)(e->kind | (e->allocator << 4));
	p = mp_put_varint(p, e->ts - c->ts);
	c->ts = e->ts;
	if (e->kind == MP_EV_ALLOC || e->kind == MP_EV_FREE) {
		p = mp_put_varint(p, mp_zigzag((int64_t)(e->addr - c->addr)));
		c->addr = e->addr;
	}
	if (e->kind == MP_EV_ALLOC) {
		p = mp_put_varint(p, e->size);
		p = mp_put_varint(p, e->stack);
	}
	return p;
}

/* Decodes one record. Returns the position after it, or NULL if the input is
 * damaged (unknown kind, truncated varint, stack id over 32 bits). */
static inline const uint8_t *mp_decode_event(mp_codec_t *c, const uint8_t *p, const uint8_t *end,
					    mp_event_t *e)
{
	uint64_t v;
	if (p >= end)
		return NULL;
	uint8_t tag = *p++;
	e->kind = tag & 15;
	e->allocator = tag >> 4;
	e->size = 0;
	e->stack = 0;
	e->pad = 0;
	if (e->kind < MP_EV_ALLOC || e->kind > MP_EV_END || e->allocator >= MP_AL_COUNT)
		return NULL;
	if (!(p = mp_get_varint(p, end, &v)))
		return NULL;
	c->ts += v;
	e->ts = c->ts;
	e->addr = 0;
	if (e->kind == MP_EV_ALLOC || e->kind == MP_EV_FREE) {
		if (!(p = mp_get_varint(p, end, &v)))
			return NULL;
		c->addr += (uint64_t)mp_unzigzag(v);
		e->addr = c->addr;
	}
	if (e->kind == MP_EV_ALLOC) {
		if (!(p = mp_get_varint(p, end, &v)))
			return NULL;
		e->size = v;
		if (!(p = mp_get_varint(p, end, &v)) || v > UINT32_MAX)
			return NULL;
		e->stack = (uint32_t)v;
	}
	return p;
}

#endif
