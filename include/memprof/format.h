/* memprof record encoding: what the preload library writes and the analyzer reads.
 *
 * The capture side produces fixed-size mp_event_t records in per-thread blocks;
 * the writer thread encodes a run of one thread's events into a chunk and compresses it
 * with zstd; the chunk is one row of the `events` table. Encoder and decoder keep the
 * same small state per chunk (mp_codec_t), so that what repeats costs almost nothing:
 *   - recently allocated addresses (MP_CODEC_ALLOCS): a free of one of them is its index;
 *   - recently freed addresses (MP_CODEC_FREES): allocators hand them out again, so an
 *     allocation at one of them is its index;
 *   - recently used stacks, most recent first (MP_CODEC_STACKS).
 * Timestamps are kept exactly (they order events across threads): a delta from the
 * previous record of the chunk, or a flag when it is zero.
 *
 * Record layout (chunk payload before compression):
 *   tag byte: bits 0-1 kind (MP_EV_*); bit 2 set = same timestamp as the previous record.
 *   ALLOC: tag bit 3 = address from the freed ring; bits 4-7 = stack index + 1 in the
 *          stack list (0: the stack follows as a varint); the stack then moves to the
 *          front of the list.
 *          then a side byte: bits 0-3 allocator (MP_AL_*), bits 4-7 freed-ring index;
 *          [varint ts delta] [varint zigzag(addr - previous address), unless from the ring]
 *          varint size, [varint stack]
 *   FREE:  tag bits 3-7 = index + 1 in the allocated ring (0: address follows);
 *          [varint ts delta] [varint zigzag(addr - previous address)]
 *   END:   tag bit 3 = restart; [varint ts delta]. The Python main program finished ("end
 *          of program"); a restart (addr 1 in mp_event_t): Python was initialized again
 *          (a program embedding it), so the end recorded before is not the end. Only
 *          such programs' files have restarts; analyzers before session 17 call a chunk
 *          holding one damaged (the schema version did not change for it).
 * The first record's delta is from the chunk's `first_ts` column; "previous address"
 * starts at 0 and follows every explicit address; rings and list start empty (zero).
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
/* An END event's addr: 0, the end of the main program; MP_END_RESTART, Python started
 * again after it (the earlier end is not the end). */
#define MP_END_RESTART 1

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
	/* Anonymous memory mapped by the program itself (mmap, mremap; not the mappings
	 * malloc makes for itself, which are malloc's blocks). A mapping is one block, its
	 * address the lowest byte of it still mapped. */
	MP_AL_MMAP = 12,
	MP_AL_MREMAP = 13,
	/* Not an allocation: a mapping that munmap (or mmap with MAP_FIXED over it) took
	 * part of. Always right after the FREE of the mapping's block, by the same thread:
	 * the block, with its stack, now holds `size` bytes at `addr` (a head unmapped
	 * moves it). It counts in live memory, not in allocations or allocated bytes, and
	 * its FREE is not a free. */
	MP_AL_MMAP_REST = 14,
	MP_AL_COUNT = 15,
};

/* Mapped memory: in a sampled profile these blocks are recorded exactly (every one,
 * weight 1). */
static inline int mp_allocator_is_mapping(unsigned a)
{
	return a == MP_AL_MMAP || a == MP_AL_MREMAP || a == MP_AL_MMAP_REST;
}

static const char *const mp_allocator_names[MP_AL_COUNT] = {
	"malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
	"memalign", "valloc", "pvalloc", "PyMem_RawMalloc", "PyMem_Malloc", "PyObject_Malloc",
	"mmap", "mremap", "munmap (rest)",
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

/* A stack node's frame: a native frame (bit 63 clear), or a Python frame (bit 63 set):
 * code id in bits 32..62, instruction offset in code units in bits 0..31.
 *
 * A native frame is a return address (bits 0..47; user-space addresses on x86-64 and
 * AArch64 are below 2^48, 2^47 on x86-64 without 5-level paging) and the module
 * generation it was captured in (bits 48..62): a counter the capture bumps after every
 * dlclose that unloaded something, so that an address reused by an object loaded where
 * another was unloaded is still told apart, and the analyzer attributes the frame to the
 * module row (schema.h) that held the address then. Only the low 15 bits of the counter
 * are kept: it wraps after 32768 unloads, and generations compare modulo 2^15 (see
 * mp_frame_gen_distance). Every frame recorded before the first unload is generation 0,
 * so a native frame is then the plain address. */
#define MP_FRAME_PYTHON (UINT64_C(1) << 63)
#define MP_FRAME_IP_BITS 48
#define MP_FRAME_IP_MASK ((UINT64_C(1) << MP_FRAME_IP_BITS) - 1)
#define MP_FRAME_GEN_MASK 0x7fffu /* 15 bits */
static inline uint64_t mp_frame_native(uint64_t ip, uint64_t gen)
{
	return (ip & MP_FRAME_IP_MASK) | ((gen & MP_FRAME_GEN_MASK) << MP_FRAME_IP_BITS);
}
static inline uint64_t mp_frame_native_ip(uint64_t f) { return f & MP_FRAME_IP_MASK; }
static inline uint32_t mp_frame_native_gen(uint64_t f)
{
	return (uint32_t)(f >> MP_FRAME_IP_BITS) & MP_FRAME_GEN_MASK;
}
/* How many generations before a frame of generation frame_gen (15 bits) a module first
 * seen in generation module_gen (the full counter, modules.gen) was seen, modulo 2^15:
 * the frame's module is the candidate with the smallest distance. */
static inline uint32_t mp_frame_gen_distance(uint32_t frame_gen, uint64_t module_gen)
{
	return (frame_gen - (uint32_t)module_gen) & MP_FRAME_GEN_MASK;
}
static inline uint64_t mp_frame_python(uint32_t code_id, uint32_t lasti)
{
	return MP_FRAME_PYTHON | ((uint64_t)code_id << 32) | lasti;
}
/* Where a stack was cut short (more native frames than MEMPROF_MAX_DEPTH, more Python
 * frames than the capture keeps): the frames outside it were not recorded (in mixed
 * mode, below Python frames: the native frames between those and its children). It has
 * the Python bit and code id 0, which no code object has, so an analyzer that does not
 * know it shows an unknown Python frame. */
#define MP_FRAME_TRUNCATED MP_FRAME_PYTHON
/* Python frames kept per stack: the innermost ones; a deeper stack hangs them from the
 * truncation marker. */
#define MP_PYTHON_MAX_FRAMES 128
static inline int mp_frame_is_truncated(uint64_t f) { return f == MP_FRAME_TRUNCATED; }
/* Spliced native chains (schema version 4). In mixed mode the native frames between the
 * eval loop and the allocator are interned once as a chain of their own, below the node
 * whose frame is MP_FRAME_CHAINS (a child of the root: code id 0x7fffffff, which no code
 * object is given); a stack that runs those frames below Python node P is then one node
 * below P whose frame is a splice of the chain's innermost node (Python bit, code id 0,
 * the node id in bits 0..31; never 0). The stack is P's frames, then the chain's frames
 * from the one below MP_FRAME_CHAINS to the spliced node: the analyzer expands it so
 * (analyzer/splice.c). A chain reached from many Python stacks takes one node per stack instead of one
 * per frame per stack. */
#define MP_FRAME_CHAINS (MP_FRAME_PYTHON | (UINT64_C(0x7fffffff) << 32))
static inline uint64_t mp_frame_splice(uint32_t node) { return MP_FRAME_PYTHON | node; }
static inline int mp_frame_is_splice(uint64_t f)
{
	return (f >> 32) == (MP_FRAME_PYTHON >> 32) && (uint32_t)f != 0;
}
static inline uint32_t mp_frame_splice_node(uint64_t f) { return (uint32_t)f; }
static inline int mp_frame_is_python(uint64_t f)
{
	return (f & MP_FRAME_PYTHON) != 0 && (f >> 32) != (MP_FRAME_PYTHON >> 32) && f != MP_FRAME_CHAINS;
}
static inline uint32_t mp_frame_code(uint64_t f) { return (uint32_t)((f >> 32) & 0x7fffffffu); }
static inline uint32_t mp_frame_lasti(uint64_t f) { return (uint32_t)f; }

/* Longest encoded record: tag, side byte and 4 varints of 10 bytes. */
#define MP_ENC_MAX_RECORD 42

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

#define MP_CODEC_ALLOCS 31
#define MP_CODEC_FREES 16
#define MP_CODEC_STACKS 15

typedef struct mp_codec {
	uint64_t ts;
	uint64_t addr;
	uint64_t allocs[MP_CODEC_ALLOCS]; /* ring, next slot at allocs_pos */
	uint64_t frees[MP_CODEC_FREES];
	uint32_t stacks[MP_CODEC_STACKS]; /* most recent first */
	unsigned allocs_pos, frees_pos;
	/* encoder only: where an address was last pushed (verified before use) */
	uint8_t alloc_at[1024], free_at[512];
} mp_codec_t;

static inline unsigned mp_codec_hash(uint64_t addr, unsigned bits)
{
	return (unsigned)((addr * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

static inline void mp_codec_init(mp_codec_t *c, uint64_t first_ts)
{
	*c = (mp_codec_t){0};
	c->ts = first_ts;
}

/* (pos + n - 1 - k) mod n for pos, k < n: the ring index k places behind the newest
 * (no division: the sum is below 2n). */
static inline unsigned mp_codec_ring(unsigned pos, unsigned k, unsigned n)
{
	unsigned i = pos + n - 1 - k;
	return i >= n ? i - n : i;
}

/* Index (0 = newest) of addr among the recent allocations, or -1 (encoder: found
 * through the hash of where each address was pushed last; a collision only costs an
 * explicit address). Any index holding the address decodes to it. */
static inline int mp_codec_find_alloc(const mp_codec_t *c, uint64_t addr)
{
	unsigned slot = c->alloc_at[mp_codec_hash(addr, 10)];
	if (slot >= MP_CODEC_ALLOCS || c->allocs[slot] != addr || !addr)
		return -1;
	return (int)mp_codec_ring(c->allocs_pos, slot, MP_CODEC_ALLOCS);
}

static inline int mp_codec_find_free(const mp_codec_t *c, uint64_t addr)
{
	unsigned slot = c->free_at[mp_codec_hash(addr, 9)];
	if (slot >= MP_CODEC_FREES || c->frees[slot] != addr || !addr)
		return -1;
	return (int)mp_codec_ring(c->frees_pos, slot, MP_CODEC_FREES);
}

static inline uint64_t mp_codec_alloc_at(const mp_codec_t *c, unsigned k)
{
	return c->allocs[mp_codec_ring(c->allocs_pos, k, MP_CODEC_ALLOCS)];
}

static inline uint64_t mp_codec_free_at(const mp_codec_t *c, unsigned k)
{
	return c->frees[mp_codec_ring(c->frees_pos, k, MP_CODEC_FREES)];
}

/* Moves stack index k (or a new stack, k = MP_CODEC_STACKS) to the front. */
static inline void mp_codec_use_stack(mp_codec_t *c, unsigned k, uint32_t stack)
{
	if (k >= MP_CODEC_STACKS)
		k = MP_CODEC_STACKS - 1;
	for (; k > 0; k--)
		c->stacks[k] = c->stacks[k - 1];
	c->stacks[0] = stack;
}

/* The encoder's search and move to the front in one pass: the index of stack among the
 * recent ones (MP_CODEC_STACKS if new), which then comes first, the ones before it one
 * place back (as mp_codec_use_stack). */
static inline unsigned mp_codec_find_use_stack(mp_codec_t *c, uint32_t stack)
{
	uint32_t moving = stack;
	for (unsigned k = 0; k < MP_CODEC_STACKS; k++) {
		uint32_t here = c->stacks[k];
		c->stacks[k] = moving;
		if (here == stack)
			return k;
		moving = here;
	}
	return MP_CODEC_STACKS;
}

static inline void mp_codec_push_alloc(mp_codec_t *c, uint64_t addr)
{
	c->alloc_at[mp_codec_hash(addr, 10)] = (uint8_t)c->allocs_pos;
	c->allocs[c->allocs_pos] = addr;
	c->allocs_pos = c->allocs_pos + 1 == MP_CODEC_ALLOCS ? 0 : c->allocs_pos + 1;
}

static inline void mp_codec_push_free(mp_codec_t *c, uint64_t addr)
{
	c->free_at[mp_codec_hash(addr, 9)] = (uint8_t)c->frees_pos;
	c->frees[c->frees_pos] = addr;
	c->frees_pos = c->frees_pos + 1 == MP_CODEC_FREES ? 0 : c->frees_pos + 1;
}


/* Appends one record at p (room for MP_ENC_MAX_RECORD bytes); returns the new end.
 * Events of a chunk must come in non-decreasing ts order. */
static inline uint8_t *mp_encode_event(mp_codec_t *c, uint8_t *p, const mp_event_t *e)
{
	uint8_t *tag = p++;
	*tag = e->kind;
	if (e->ts == c->ts)
		*tag |= 4;
	if (e->kind == MP_EV_END && e->addr == MP_END_RESTART)
		*tag |= 8;
	if (e->kind == MP_EV_ALLOC) {
		int fi = mp_codec_find_free(c, e->addr);
		unsigned si = mp_codec_find_use_stack(c, e->stack);
		if (fi >= 0)
			*tag |= 8;
		if (si < MP_CODEC_STACKS)
			*tag |= (uint8_t)((si + 1) << 4);
		*p++ = (uint8_t)(e->allocator | ((fi >= 0 ? fi : 0) << 4));
		if (e->ts != c->ts)
			p = mp_put_varint(p, e->ts - c->ts);
		if (fi < 0) {
			p = mp_put_varint(p, mp_zigzag((int64_t)(e->addr - c->addr)));
			c->addr = e->addr;
		}
		p = mp_put_varint(p, e->size);
		if (si == MP_CODEC_STACKS)
			p = mp_put_varint(p, e->stack);
		mp_codec_push_alloc(c, e->addr);
	} else if (e->kind == MP_EV_FREE) {
		int ai = mp_codec_find_alloc(c, e->addr);
		if (ai >= 0)
			*tag |= (uint8_t)((ai + 1) << 3);
		if (e->ts != c->ts)
			p = mp_put_varint(p, e->ts - c->ts);
		if (ai < 0) {
			p = mp_put_varint(p, mp_zigzag((int64_t)(e->addr - c->addr)));
			c->addr = e->addr;
		}
		mp_codec_push_free(c, e->addr);
	} else {
		if (e->ts != c->ts)
			p = mp_put_varint(p, e->ts - c->ts);
	}
	c->ts = e->ts;
	return p;
}

/* Decodes one record. Returns the position after it, or NULL if the input is
 * damaged (unknown kind or allocator, truncated varint, stack id over 32 bits). */
static inline const uint8_t *mp_decode_event(mp_codec_t *c, const uint8_t *p, const uint8_t *end,
					    mp_event_t *e)
{
	uint64_t v;
	if (p >= end)
		return NULL;
	uint8_t tag = *p++;
	e->kind = tag & 3;
	e->allocator = 0;
	e->size = 0;
	e->stack = 0;
	e->pad = 0;
	e->addr = 0;
	if (e->kind == MP_EV_ALLOC) {
		if (p >= end)
			return NULL;
		uint8_t side = *p++;
		e->allocator = side & 15;
		if (e->allocator >= MP_AL_COUNT)
			return NULL;
		if (!(tag & 4)) {
			if (!(p = mp_get_varint(p, end, &v)))
				return NULL;
			c->ts += v;
		}
		if (tag & 8) {
			e->addr = mp_codec_free_at(c, side >> 4);
		} else {
			if (!(p = mp_get_varint(p, end, &v)))
				return NULL;
			c->addr += (uint64_t)mp_unzigzag(v);
			e->addr = c->addr;
		}
		if (!(p = mp_get_varint(p, end, &e->size)))
			return NULL;
		unsigned si = tag >> 4;
		if (si) {
			e->stack = c->stacks[si - 1];
			mp_codec_use_stack(c, si - 1, e->stack);
		} else {
			if (!(p = mp_get_varint(p, end, &v)) || v > UINT32_MAX)
				return NULL;
			e->stack = (uint32_t)v;
			mp_codec_use_stack(c, MP_CODEC_STACKS, e->stack);
		}
		mp_codec_push_alloc(c, e->addr);
	} else if (e->kind == MP_EV_FREE) {
		if (!(tag & 4)) {
			if (!(p = mp_get_varint(p, end, &v)))
				return NULL;
			c->ts += v;
		}
		unsigned ai = tag >> 3;
		if (ai) {
			e->addr = mp_codec_alloc_at(c, ai - 1);
		} else {
			if (!(p = mp_get_varint(p, end, &v)))
				return NULL;
			c->addr += (uint64_t)mp_unzigzag(v);
			e->addr = c->addr;
		}
		mp_codec_push_free(c, e->addr);
	} else if (e->kind == MP_EV_END) {
		if (tag & ~15)
			return NULL;
		e->addr = tag & 8 ? MP_END_RESTART : 0;
		if (!(tag & 4)) {
			if (!(p = mp_get_varint(p, end, &v)))
				return NULL;
			c->ts += v;
		}
	} else {
		return NULL;
	}
	e->ts = c->ts;
	return p;
}

#endif
