/* The frame walk of one CPython minor version (python_variant.h): compiled once for each
 * supported version against its internal headers, with MP_PYTHON_VARIANT naming the
 * python_variant_t this copy exports (python_variant_311, ...). Everything else here is
 * static: the copies share no state, and only the running version's is ever used.
 *
 * What differs between the versions, all of it in the macros below: what a frame is
 * (3.9, 3.10: a frame object, with an instruction index, f_lasti; 3.11 on: an interpreter
 * frame, with an instruction pointer), where its code object and instruction are (3.13:
 * f_executable, instr_ptr; 3.11, 3.12: f_code, prev_instr, which point at the same
 * instruction for the walk's purpose), where a thread state keeps its innermost frame
 * (3.9, 3.10: frame; 3.11, 3.12: cframe->current_frame; 3.13: current_frame), how the thread
 * holding the GIL is found (up to 3.11: _PyRuntime's gilstate; 3.12 on: a thread-local
 * variable that only the interpreter's own function reads), and the shim frames 3.12 and
 * later push where C code calls into Python (owned by the C stack, no Python code of the
 * program's: never part of a stack). */
#define _GNU_SOURCE
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_code.h>
#if PY_VERSION_HEX >= 0x030b0000
#include <internal/pycore_frame.h>
#else
#include <frameobject.h>
#endif
#include <internal/pycore_runtime.h>

#include "python_variant.h"
#if PY_VERSION_HEX < 0x030b0000
#include "pyline_convert.h"
#endif
#include "mem.h"
#include "mp.h"
#include "native.h"
#include "record.h"
#include "stack.h"
#include "unwind.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef MP_PYTHON_VARIANT
#error "compile with -DMP_PYTHON_VARIANT=python_variant_3XX (preload/meson.build)"
#endif
#if PY_VERSION_HEX < 0x03090000 || PY_VERSION_HEX >= 0x030e0000
#error "the frame walk in this file is written for the CPython 3.9 to 3.13 layouts"
#endif
#ifdef Py_GIL_DISABLED
#error "free-threaded CPython builds are not supported (the MEM and OBJ domains need the GIL)"
#endif

#if PY_VERSION_HEX >= 0x030b0000
typedef _PyInterpreterFrame py_frame_t;
#define PY_FRAME_BACK(f) ((f)->previous)
#else
/* 3.9, 3.10: a frame is a frame object, its position an instruction index (f_lasti), kept
 * up to date by the eval loop at every instruction as 3.11's prev_instr is */
typedef PyFrameObject py_frame_t;
#define PY_FRAME_BACK(f) ((f)->f_back)
#define PY_FRAME_CODE(f) ((const PyCodeObject *)(f)->f_code)
#define PY_TOP_FRAME(ts) ((ts)->frame)
#endif
#if PY_VERSION_HEX >= 0x030d0000
#define PY_FRAME_CODE(f) ((const PyCodeObject *)(f)->f_executable)
#define PY_FRAME_IP(f) ((f)->instr_ptr)
#define PY_TOP_FRAME(ts) ((ts)->current_frame)
#elif PY_VERSION_HEX >= 0x030b0000
#define PY_FRAME_CODE(f) ((f)->f_code)
#define PY_FRAME_IP(f) ((f)->prev_instr)
#define PY_TOP_FRAME(ts) ((ts)->cframe ? (ts)->cframe->current_frame : NULL)
#endif
#if PY_VERSION_HEX >= 0x030c0000
/* A frame that C code pushed to enter the eval loop, no frame of Python code. */
#define PY_FRAME_SHIM(f) ((f)->owner == FRAME_OWNED_BY_CSTACK)
#else
#define PY_FRAME_SHIM(f) false
#endif

static uint64_t python_eval_lo, python_eval_hi; /* _PyEval_EvalFrameDefault */
#if PY_VERSION_HEX < 0x030d0000
static _PyRuntimeState *python_runtime;
#endif
#if PY_VERSION_HEX >= 0x030c0000
static PyThreadState *(*python_unchecked_get)(void);
#endif
static const char *(*python_allocator_name_real)(void);

/* ---- code objects ---------------------------------------------------------------- */

/* What identifies a code object beyond its address, which is reused after it dies. */
typedef struct python_code_key {
	const void *code, *filename, *qualname, *linetable;
	int firstlineno;
} python_code_key_t;

typedef struct python_code_slot {
	python_code_key_t key;
	uint32_t id;
} python_code_slot_t;

static pthread_mutex_t python_code_lock = PTHREAD_MUTEX_INITIALIZER;
static python_code_slot_t *python_codes;
static size_t python_codes_cap, python_codes_n;
static uint32_t python_code_next = 1;
static pycode_rec_t *python_code_new;
static atomic_uint python_generation;

#define PY_CODE_CACHE 512
#define PY_MAX_FRAMES MP_PYTHON_MAX_FRAMES /* frames of Python code kept */
#if PY_VERSION_HEX >= 0x030c0000
#define PY_WALK_FRAMES (2 * PY_MAX_FRAMES) /* with the shims among them */
#else
#define PY_WALK_FRAMES PY_MAX_FRAMES
#endif
#define PY_TOP_MEMO 16

typedef struct python_walk_frame {
	const PyCodeObject *code;
	/* The frame's prev_instr, the instruction it is at (code units are 2 bytes, so bit 0
	 * is free), with PYTHON_POS_GENERATOR set for a generator's frame (complete at any
	 * offset). The offset is worked out only for the frames interned (python_lasti). In
	 * the previous stack (python_tcache_t.prev) the word is what python_frame_kept
	 * makes of it: the bare prev_instr, which the walk compares with a frame's own
	 * (python_frame_at). */
	uint64_t pos;
} python_walk_frame_t;

#define PYTHON_POS_GENERATOR 1u
#if PY_VERSION_HEX >= 0x030b0000
_Static_assert(FRAME_OWNED_BY_THREAD == 0 && FRAME_OWNED_BY_GENERATOR == 1,
	       "a frame's owner is its generator bit (python_walk)");
_Static_assert(offsetof(PyCodeObject, co_code_adaptive) % sizeof(_Py_CODEUNIT) == 0 && sizeof(_Py_CODEUNIT) == 2,
	       "instructions are 2-byte aligned: bit 0 of prev_instr is free for the generator bit");

/* The frame's instruction offset in code units; -1 (UINT32_MAX) before the first
 * instruction. Unsigned arithmetic, whose shift drops the generator bit: the byte
 * offset is even (2 bytes before the code's start, or after it), so the bit makes it
 * odd, and the offset -2 gives all ones. */
static inline uint32_t python_lasti(const python_walk_frame_t *f)
{
	return (uint32_t)((f->pos - (uint64_t)(uintptr_t)_PyCode_CODE(f->code)) >> 1);
}
#else
/* 3.9, 3.10: the word is f_lasti (-1 before the first instruction; 3.10 counts code
 * units, 3.9 bytes) shifted left by one, bit 0 (the generator bit) clear, and
 * PYTHON_POS_LASTI set, so that no position is 0. A frame is complete from its first
 * instruction on, whoever owns it: these versions make a function's cells and copy its
 * free variables before they push the frame. The index is the code object's own, so the
 * walk compares the code object too (python_frame_at). */
#define PYTHON_POS_LASTI (UINT64_C(1) << 40)
static inline uint64_t python_pos_lasti(const py_frame_t *f)
{
	return (uint64_t)(uint32_t)f->f_lasti << 1 | PYTHON_POS_LASTI;
}

/* (-1 stays -1: UINT32_MAX) */
static inline uint32_t python_lasti(const python_walk_frame_t *f)
{
	int32_t lasti = (int32_t)(uint32_t)(f->pos >> 1);
#if PY_VERSION_HEX < 0x030a0000
	if (lasti > 0)
		lasti /= 2;
#endif
	return (uint32_t)lasti;
}
#endif

typedef struct python_top_slot {
	uint64_t pos;
	uint32_t parent, id;
#if PY_VERSION_HEX < 0x030b0000
	const PyCodeObject *code; /* 3.9, 3.10: a position is an index, the same in every code object */
#endif
} python_top_slot_t;
#if PY_VERSION_HEX >= 0x030b0000
#define PY_TOP_SLOT_CODE_IS(m, co) true
#define PY_TOP_SLOT_CODE(co)
#else
#define PY_TOP_SLOT_CODE_IS(m, co) ((m)->code == (co))
#define PY_TOP_SLOT_CODE(co) , (co)
#endif

/* Per-thread Python state: a code-id cache and the previous stack, compared by raw
 * position (python_frame_at) so that an unchanged prefix costs no lookup at all. */
typedef struct python_tcache {
	unsigned generation;
	unsigned prev_n;
	uint32_t prev_root; /* the node the previous frames hang from: 0, or the truncation marker's */
	unsigned mixed_guess; /* native frames to unwind in mixed mode */
	const py_frame_t *prev_top; /* the innermost frame when a stack was last interned (a hint) */
	python_walk_frame_t prev[PY_WALK_FRAMES]; /* outermost first */
	uint32_t prev_codes[PY_WALK_FRAMES];      /* their code ids */
	uint32_t prev_ids[PY_WALK_FRAMES];        /* their stack nodes */
	/* Where the frames were (a hint, never read before the walk has compared it with a
	 * live frame's link: python_caller_at, python_intern_realign): the frames kept in prev. */
	const py_frame_t *prev_at[PY_WALK_FRAMES];
	/* The innermost frame's recent positions (prev_instr and generator bit, as read)
	 * under their caller's node, and their nodes (python_intern), direct-mapped: a loop
	 * allocating on a few lines of a function finds its node here without reading the
	 * code object or hashing into the stack cache. An empty slot's pos is 0, which no
	 * position is. */
	python_top_slot_t top[PY_TOP_MEMO];
	python_code_slot_t codes[PY_CODE_CACHE];
} python_tcache_t;

#if PY_VERSION_HEX >= 0x030b0000
#define PY_CODE_QUALNAME(co) ((co)->co_qualname)
#else
#define PY_CODE_QUALNAME(co) ((co)->co_name) /* 3.9's and 3.10's have no qualified name */
#endif
#if PY_VERSION_HEX >= 0x030a0000
#define PY_CODE_LINES(co) ((co)->co_linetable)
#else
#define PY_CODE_LINES(co) ((co)->co_lnotab)
#endif

static inline void python_code_key(const PyCodeObject *co, python_code_key_t *k)
{
	k->code = co;
	k->filename = co->co_filename;
	k->qualname = PY_CODE_QUALNAME(co);
	k->linetable = PY_CODE_LINES(co);
	k->firstlineno = co->co_firstlineno;
}

static inline bool python_key_eq(const python_code_key_t *a, const python_code_key_t *b)
{
	return a->code == b->code && a->filename == b->filename && a->qualname == b->qualname &&
	       a->linetable == b->linetable && a->firstlineno == b->firstlineno;
}

static inline size_t python_ptr_hash(const void *p)
{
	uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 20);
}

/* UTF-8 copy of a str object, read directly (no API call, no allocation by Python). As
 * os.fsencode makes a file name's bytes: the lone surrogates U+DC80-U+DCFF, which stand
 * for the bytes of a name that are not UTF-8 (surrogateescape), are those bytes again;
 * other lone surrogates, which no UTF-8 holds, are U+FFFD. */
static char *python_utf8(PyObject *o)
{
	if (!o || !PyUnicode_Check(o) || !PyUnicode_IS_READY(o))
		return mem_strdup("?");
	Py_ssize_t len = PyUnicode_GET_LENGTH(o);
	int kind = PyUnicode_KIND(o);
	const void *data = PyUnicode_DATA(o);
	char *out = mem_alloc((size_t)len * 4 + 1), *p = out;
	if (!out)
		return NULL;
	for (Py_ssize_t i = 0; i < len; i++) {
		Py_UCS4 c = PyUnicode_READ(kind, data, i);
		if (c >= 0xDC80 && c <= 0xDCFF) {
			*p++ = (char)(c - 0xDC00);
			continue;
		}
		if (c >= 0xD800 && c <= 0xDFFF)
			c = 0xFFFD;
		if (c < 0x80) {
			*p++ = (char)c;
		} else if (c < 0x800) {
			*p++ = (char)(0xC0 | (c >> 6));
			*p++ = (char)(0x80 | (c & 0x3F));
		} else if (c < 0x10000) {
			*p++ = (char)(0xE0 | (c >> 12));
			*p++ = (char)(0x80 | ((c >> 6) & 0x3F));
			*p++ = (char)(0x80 | (c & 0x3F));
		} else {
			*p++ = (char)(0xF0 | (c >> 18));
			*p++ = (char)(0x80 | ((c >> 12) & 0x3F));
			*p++ = (char)(0x80 | ((c >> 6) & 0x3F));
			*p++ = (char)(0x80 | (c & 0x3F));
		}
	}
	*p = 0;
	return out;
}

/* Captures a new code object's description for the writer; lock held. */
static void python_code_capture(const PyCodeObject *co, uint32_t id)
{
	pycode_rec_t *r = mem_alloc(sizeof *r);
	if (!r)
		return;
	r->id = id;
	r->firstlineno = co->co_firstlineno;
	r->filename = python_utf8(co->co_filename);
	r->name = python_utf8(co->co_name);
	r->qualname = python_utf8(PY_CODE_QUALNAME(co));
	PyObject *lt = PY_CODE_LINES(co);
	if (lt && PyBytes_Check(lt)) {
		/* not PyBytes_GET_SIZE, whose asserts (3.12 on) name PyLong_Type */
		size_t len = (size_t)((PyVarObject *)lt)->ob_size;
#if PY_VERSION_HEX >= 0x030b0000
		r->linetable_len = len;
		r->linetable = mem_alloc(len + 1);
		if (r->linetable)
			memcpy(r->linetable, PyBytes_AS_STRING(lt), len);
		else
			r->linetable_len = 0;
#elif PY_VERSION_HEX >= 0x030a0000
		/* the file holds 3.11's location tables (schema.h): 3.10's line table is
		 * written as one */
		r->linetable = mem_alloc(pyline310_bound(len) + 1);
		r->linetable_len = r->linetable ? pyline310_convert((const uint8_t *)PyBytes_AS_STRING(lt), len,
								     r->linetable)
						: 0;
#else
		/* and so is 3.9's, which needs the code's length */
		PyObject *code = co->co_code;
		size_t code_len = code && PyBytes_Check(code) ? (size_t)((PyVarObject *)code)->ob_size : 0;
		r->linetable = mem_alloc(pyline39_bound(len, code_len) + 1);
		r->linetable_len = r->linetable ? pyline39_convert((const uint8_t *)PyBytes_AS_STRING(lt), len, code_len,
								    r->linetable)
						: 0;
#endif
	}
	r->next = python_code_new;
	python_code_new = r;
}

static int python_codes_grow(void)
{
	size_t ncap = python_codes_cap ? python_codes_cap * 2 : 1024;
	python_code_slot_t *nt = mem_alloc(ncap * sizeof *nt);
	if (!nt)
		return -1;
	python_codes_n = 0;
	for (size_t i = 0; i < python_codes_cap; i++) {
		if (!python_codes[i].id || !python_codes[i].key.code) /* empty, or a dead code's */
			continue;
		size_t j = python_ptr_hash(python_codes[i].key.code) & (ncap - 1);
		while (nt[j].id)
			j = (j + 1) & (ncap - 1);
		nt[j] = python_codes[i];
		python_codes_n++;
	}
	mem_free(python_codes);
	python_codes = nt;
	python_codes_cap = ncap;
	return 0;
}

static uint32_t python_code_global(const PyCodeObject *co, const python_code_key_t *k)
{
	uint32_t id = 0;
	int saved = errno;
	pthread_mutex_lock(&python_code_lock);
	if ((python_codes_n + 1) * 2 > python_codes_cap && python_codes_grow() < 0)
		goto out;
	size_t i = python_ptr_hash(co) & (python_codes_cap - 1);
	for (;;) {
		python_code_slot_t *s = &python_codes[i];
		if (!s->id)
			break;
		if (python_key_eq(&s->key, k)) {
			id = s->id;
			goto out;
		}
		if (s->key.code == co) {
			/* same address, another code object: the old one died */
			break;
		}
		i = (i + 1) & (python_codes_cap - 1);
	}
	if (python_code_next >= mp_frame_code(MP_FRAME_CHAINS)) {
		/* code ids are 31 bits, and the last is MP_FRAME_CHAINS's: the frame is left out */
		id = 0;
		goto out;
	}
	id = python_code_next++;
	python_code_slot_t *s = &python_codes[i];
	if (!s->id)
		python_codes_n++;
	s->key = *k;
	s->id = id;
	python_code_capture(co, id);
	if (mp_unlikely(python_test_slow_code_us)) {
		struct timespec ts = {0, python_test_slow_code_us * 1000L};
		nanosleep(&ts, NULL);
	}
out:
	pthread_mutex_unlock(&python_code_lock);
	errno = saved;
	return id;
}

/* Code objects die, and a new one can be allocated at the same address, with its line
 * table and names at the addresses of the old one's: the code-id caches must forget a
 * code object when it dies. PyCode_Type's tp_dealloc is wrapped (python_code_dealloc)
 * to say so: no allocator hook has to look at what it frees (a free hook asked every
 * block of the OBJ domain whether its type was PyCode_Type), and sampling mode's hooks
 * see it as exact mode's do. Its slot keeps probing sequences intact but matches nothing
 * any more (key.code = NULL), and every thread's caches (code ids, the previous stack,
 * the memo of positions, all keyed by address) are dropped through the generation. */
static void python_code_freed(const void *p)
{
	bool found = false;
	pthread_mutex_lock(&python_code_lock);
	if (python_codes_cap) {
		size_t i = python_ptr_hash(p) & (python_codes_cap - 1);
		for (; python_codes[i].id; i = (i + 1) & (python_codes_cap - 1)) {
			if (python_codes[i].key.code == p) {
				python_codes[i].key.code = NULL;
				found = true;
				break;
			}
		}
	}
	pthread_mutex_unlock(&python_code_lock);
	if (found)
		atomic_fetch_add(&python_generation, 1);
}

static destructor python_code_dealloc_orig;

static void python_code_dealloc(PyObject *co)
{
	python_code_freed(co);
	python_code_dealloc_orig(co);
}

/* Wraps PyCode_Type's tp_dealloc (at start-up, before any thread runs Python). */
static void python_code_watch(void)
{
	PyTypeObject *type = dlsym(RTLD_DEFAULT, "PyCode_Type");
	if (!type || !type->tp_dealloc) {
		mp_log("cannot watch code objects die: a code object made where a dead one was may "
		       "be shown with the dead one's lines");
		return;
	}
	if (type->tp_dealloc == python_code_dealloc)
		return; /* wrapped already */
	python_code_dealloc_orig = type->tp_dealloc;
	type->tp_dealloc = python_code_dealloc;
}

static inline uint32_t python_code_id(python_tcache_t *c, const PyCodeObject *co)
{
	python_code_key_t k;
	python_code_key(co, &k);
	python_code_slot_t *s = &c->codes[python_ptr_hash(co) & (PY_CODE_CACHE - 1)];
	if (s->id && python_key_eq(&s->key, &k))
		return s->id;
	uint32_t id = python_code_global(co, &k);
	if (id) {
		s->key = k;
		s->id = id;
	}
	return id;
}

static pycode_rec_t *python_walk_take_new_code(void)
{
	pthread_mutex_lock(&python_code_lock);
	pycode_rec_t *r = python_code_new;
	python_code_new = NULL;
	pthread_mutex_unlock(&python_code_lock);
	return r;
}

/* ---- the frame walk ---------------------------------------------------------------- */

/* A frame's position word (python_walk_frame_t.pos). Owners on a thread's stack: the
 * thread (0) or a generator (1); a frame owned by its frame object (2) is no longer
 * running. */
static inline python_walk_frame_t python_walk_frame(const py_frame_t *f)
{
#if PY_VERSION_HEX >= 0x030b0000
	return (python_walk_frame_t){PY_FRAME_CODE(f), (uint64_t)(uintptr_t)PY_FRAME_IP(f) | (f->owner & 1u)};
#else
	return (python_walk_frame_t){PY_FRAME_CODE(f), python_pos_lasti(f)};
#endif
}

/* What the previous stack keeps of a frame (python_walk_frame_t.pos there), or 0 if
 * the frame is not complete: past its prologue (making cells, copying free variables),
 * or a generator's, which is complete at any offset. CPython's own frame APIs leave
 * incomplete frames out, and so does python_intern.
 *
 * A frame past its prologue is complete whoever owns it: its word is the bare
 * prev_instr, so that the walk compares one load (python_frame_at). A generator's frame
 * in its prologue keeps the generator bit, an odd word that no prev_instr equals: a
 * thread's frame at the same instruction is not complete, so the walk must not take
 * one for the other, and a frame compared with it is always read again. */
static inline uint64_t python_frame_kept(const python_walk_frame_t *f)
{
#if PY_VERSION_HEX < 0x030b0000
	/* a frame at f_lasti -1 has not started (3.9 and 3.10 have no other prologue) */
	return python_lasti(f) != UINT32_MAX ? f->pos : 0; /* never 0 (PYTHON_POS_LASTI) */
#else
	if ((int32_t)python_lasti(f) >= f->code->_co_firsttraceable)
		return f->pos & ~(uint64_t)PYTHON_POS_GENERATOR;
	return f->pos & PYTHON_POS_GENERATOR ? f->pos : 0;
#endif
}

/* Whether frame f is at the previous stack's position *q. The position alone tells: it
 * points into the code object's own instructions (inline in the object in 3.11; before
 * the first, into its header), and no two live code objects share an address; and a
 * frame at a kept position is complete as the one kept was (python_frame_kept). The
 * code objects of the previous stack are alive: each was given an id, so the death of
 * one is seen (python_code_freed) and the thread's cache, the previous stack with it,
 * is dropped (python_tcache) before it is compared again. Before 3.11 the position is an
 * index: the code object is compared as well. */
static inline bool python_frame_at(const python_walk_frame_t *q, const py_frame_t *f)
{
#if PY_VERSION_HEX >= 0x030b0000
	return q->pos == (uint64_t)(uintptr_t)PY_FRAME_IP(f);
#else
	return q->pos == python_pos_lasti(f) && q->code == PY_FRAME_CODE(f);
#endif
}

/* What python_walk found. The stack is as deep as the previous one when rest is NULL
 * and q is c->prev; python_walk_count tells the rest. */
typedef struct python_walked {
	const py_frame_t *top;  /* the innermost frame */
	const py_frame_t *rest; /* the frame past the previous stack's depth, or NULL */
	const python_walk_frame_t *q;    /* the previous stack's frame the walk stopped at */
	const python_walk_frame_t *diff; /* its outermost frame that differs (&prev[prev_n]: none) */
	bool moved; /* a frame was not where prev_at says the previous stack's was */
} python_walked_t;

/* The caller of frame f, read from where the previous stack's frame below f's depth
 * was (*at, in prev_at) when it is there. The walk reads a frame's link and
 * position, then its caller's: one dependent load after another, a few cycles each on a
 * hit, and on a deep stack the outer frames are seldom in the L1 cache (black spent half
 * its walk waiting on them). The link is compared with prev_at, not waited for: the
 * processor, predicting them equal, reads the next frame before the link arrives, and so
 * the frames of the whole stack at once. Nothing is read from an address before it is
 * known to be a live frame's. */
static inline const py_frame_t *python_caller_at(const py_frame_t *f, const py_frame_t *const *at, bool *moved)
{
	const py_frame_t *g = PY_FRAME_BACK(f), *h = *at;
	if (mp_likely(g == h)) {
		/* h from here on, never the link it equals (which would chain the loads again) */
		__asm__("" : "+r"(h));
		return h;
	}
	*moved = true;
	return g;
}

/* What python_compare found: the frame after the last compared (NULL: the stack ended),
 * the previous stack's frame it stopped at (c->prev: all compared), its outermost frame
 * that differs (the depth compare started from: none), and whether a frame was not where
 * prev_at said. */
typedef struct python_compared {
	const py_frame_t *f;
	const python_walk_frame_t *q, *diff;
	bool moved;
} python_compared_t;

/* Compares frame f, supposed at depth d - 1 of the previous stack, and its callers with
 * that stack's frames at the same depths, down to depth 0 or the stack's end. */
static inline __attribute__((always_inline)) python_compared_t python_compare(const python_tcache_t *c,
									       const py_frame_t *f, unsigned d)
{
	const python_walk_frame_t *q = &c->prev[d], *diff = q; /* the frame at f's depth, + 1 */
	const py_frame_t *const *at = &c->prev_at[d];            /* where it was, + 1 */
	bool moved = false;
	while (f && q != c->prev) {
		if (!python_frame_at(--q, f))
			diff = q;
		--at;
		f = q != c->prev ? python_caller_at(f, at - 1, &moved) : PY_FRAME_BACK(f);
	}
	return (python_compared_t){f, q, diff, moved};
}

/* The frames from f outwards, innermost first, as deep as the previous stack (the rest
 * python_walk_count counts): python_intern leaves out the incomplete ones. Reads only the
 * frames (each caller from where the previous stack's was, when it is there:
 * python_caller_at); the thread is the caller, so they cannot change while it records.
 * Each frame is compared with the previous stack's at the same depth as it is read
 * (python_compare), supposing the depth has not changed (the common case: the loop that
 * allocates calls the same functions), so that the unchanged prefix is known without a
 * second pass over the frames: the outermost difference seen bounds it. Nothing is
 * stored: the commonest stacks need no frame but the innermost (python_intern), and the
 * others are walked again (python_frames). */
static inline __attribute__((always_inline)) python_walked_t python_walk(const python_tcache_t *c,
									  const py_frame_t *f)
{
	python_compared_t r = python_compare(c, f, c->prev_n);
	return (python_walked_t){.top = f, .rest = r.f, .q = r.q, .diff = r.diff, .moved = r.moved};
}

/* What python_intern_below needs of the walk: the frames walked, all of them up to
 * PY_MAX_FRAMES of Python code (n, shims included), whether outer frames were left out,
 * and how many frames (outermost first) the stack shares with the previous one when both
 * are n deep (UINT_MAX when the depth changed: python_intern_below compares). */
typedef struct python_walk_counted {
	unsigned n;
	bool more;
	unsigned same;
} python_walk_counted_t;

static inline python_walk_counted_t python_walk_count(const python_tcache_t *c, python_walked_t w)
{
	unsigned pn = c->prev_n;
#if PY_WALK_FRAMES > PY_MAX_FRAMES
	/* PY_MAX_FRAMES frames of Python code, and the shims among and after them (up to
	 * PY_WALK_FRAMES frames in all) */
	unsigned n = 0, code = 0;
	const py_frame_t *f = w.top;
	for (; f && n < PY_WALK_FRAMES; f = PY_FRAME_BACK(f), n++)
		if (!PY_FRAME_SHIM(f) && code++ == PY_MAX_FRAMES)
			break;
#else
	unsigned n = pn - (unsigned)(w.q - c->prev);
	const py_frame_t *f = w.rest;
	for (; f && n < PY_MAX_FRAMES; f = PY_FRAME_BACK(f))
		n++;
#endif
	return (python_walk_counted_t){n, f != NULL, n == pn ? (unsigned)(w.diff - c->prev) : UINT_MAX};
}

/* The n frames from f outwards, innermost first. */
static inline void python_frames(const py_frame_t *f, unsigned n, const py_frame_t **fr)
{
	for (unsigned i = 0; i < n; i++, f = PY_FRAME_BACK(f))
		fr[i] = f;
}

/* python_frames for a stack n deep whose depth is not the previous stack's: compares
 * each frame with the previous stack's at the same depth as it is read, and returns how
 * many frames (outermost first) the two stacks share. */
static inline unsigned python_frames_shared(const python_tcache_t *c, const py_frame_t *f, unsigned n,
					    const py_frame_t **fr)
{
	unsigned lim = n < c->prev_n ? n : c->prev_n, i = 0, same = lim;
	for (; i < n - lim; i++, f = PY_FRAME_BACK(f))
		fr[i] = f;
	for (unsigned d = lim; d-- > 0; i++, f = PY_FRAME_BACK(f)) {
		fr[i] = f;
		if (!python_frame_at(&c->prev[d], f))
			same = d;
	}
	return same;
}

static inline __attribute__((always_inline)) python_tcache_t *python_tcache(mp_thread_t *t)
{
	python_tcache_t *c = t->py;
	if (mp_unlikely(!c)) {
		c = t->py = mem_alloc(sizeof *c);
		if (!c)
			return NULL;
		c->generation = atomic_load(&python_generation);
	}
	unsigned g = atomic_load_explicit(&python_generation, memory_order_relaxed);
	if (mp_unlikely(c->generation != g)) {
		memset(c, 0, sizeof *c);
		c->generation = g;
	}
	return c;
}

/* Interns the stack's n frames and returns the node. fr[0 .. n - d) are its frames below
 * the d it shares with the previous stack, innermost first (frame k of the stack, from
 * the outermost, is fr[n - 1 - k]); the stack hangs from root. The shared prefix costs
 * no lookup; below it, a frame whose code object is the one the previous stack had at
 * that depth (most often only the innermost line moved) reuses its code id.
 *
 * Frames that are not complete yet (still in their prologue: making cells, copying free
 * variables) are left out, as CPython's own frame APIs do. Telling them apart reads the
 * code object (_co_firsttraceable), most often a cache miss on a deep stack, so it is
 * read only below the shared prefix: a frame of the prefix was complete in the previous
 * stack, and completeness depends on code, offset and whether the frame is a
 * generator's (complete at any offset) alone. A shim frame (3.12 on) is kept in the
 * previous stack with its caller's node and none of its own. c->prev_n is left at the
 * number of frames kept: 0 when none is complete (or the first failed), and then 0 is
 * returned. */
static uint32_t python_intern_frames(mp_thread_t *t, python_tcache_t *c, const py_frame_t *const *fr,
				     unsigned n, unsigned d, uint32_t root)
{
	uint32_t id = d ? c->prev_ids[d - 1] : root;
	for (unsigned k = d; k < n; k++) {
		python_walk_frame_t f = python_walk_frame(fr[n - 1 - k]);
		if (PY_FRAME_SHIM(fr[n - 1 - k])) {
			/* kept in the previous stack, so that the walk's depths stay aligned
			 * with the frames it reads, with its caller's node: no frame of its own */
			c->prev[d] = (python_walk_frame_t){f.code, f.pos & ~(uint64_t)PYTHON_POS_GENERATOR};
			c->prev_at[d] = fr[n - 1 - k];
			c->prev_codes[d] = 0;
			c->prev_ids[d] = id;
			d++;
			continue;
		}
		uint64_t kept = python_frame_kept(&f);
		if (!kept)
			continue;
		uint32_t code = d < c->prev_n && c->prev[d].code == f.code ? c->prev_codes[d] : python_code_id(c, f.code);
		if (!code)
			break;
		id = stack_child(t->cache, id, mp_frame_python(code, python_lasti(&f)));
		if (!id)
			break;
		c->prev[d] = (python_walk_frame_t){f.code, kept};
		c->prev_at[d] = fr[n - 1 - k];
		c->prev_codes[d] = code;
		c->prev_ids[d] = id;
		d++;
	}
	c->prev_n = d;
	return d ? id : 0;
}

/* The stack python_walk did not answer alone (python_intern): counted, its frames below
 * the prefix it shares with the previous stack gathered, and interned. `w.more`: the
 * walk left outer frames out; the stack then hangs from the truncation marker
 * (format.h) instead of the root. */
static __attribute__((noinline)) uint32_t python_intern_below(mp_thread_t *t, python_tcache_t *c, python_walked_t walked)
{
	python_walk_counted_t w = python_walk_count(c, walked);
	unsigned n = w.n;
	uint32_t root = w.more ? stack_child(t->cache, 0, MP_FRAME_TRUNCATED) : 0;
	if (w.more && !root)
		return c->prev_n = 0;
	/* the frames below the shared prefix (d frames), which are the ones interned:
	 * fr[0 .. n - d), innermost first */
	const py_frame_t *fr[PY_WALK_FRAMES];
	unsigned d = 0;
	if (root != c->prev_root)
		python_frames(walked.top, n, fr);
	else if (w.same != UINT_MAX)
		python_frames(walked.top, n - (d = w.same), fr);
	else
		d = python_frames_shared(c, walked.top, n, fr);
	c->prev_root = root;
	return python_intern_frames(t, c, fr, n, d, root);
}

/* python_intern_below, but the two commonest cases are answered here, without a call: a
 * stack the same as the previous one (a loop allocating on one line: half of py_json's
 * stacks), and one whose innermost frame alone moved within its code object (a loop
 * allocating on several lines: most of py_alloc's and py_threads'), whose node most
 * often comes from the memo of recent positions (python_tcache_t.top). */
static inline __attribute__((always_inline)) uint32_t python_intern(mp_thread_t *t, python_tcache_t *c,
								     python_walked_t w)
{
	unsigned n = c->prev_n;
	if (!w.rest && w.q == c->prev && !c->prev_root) { /* as deep as the previous stack (n > 0) */
		if (w.diff == &c->prev[n])
			return c->prev_ids[n - 1];
		if (PY_FRAME_SHIM(w.top))
			return python_intern_below(t, c, w);
		python_walk_frame_t f = python_walk_frame(w.top);
		if (w.diff == &c->prev[n - 1] && f.code == c->prev[n - 1].code) {
			uint32_t parent = n > 1 ? c->prev_ids[n - 2] : 0, id;
			python_top_slot_t *m = &c->top[((uint32_t)(f.pos >> 1) ^ parent) % PY_TOP_MEMO];
			/* what python_frame_kept makes of a complete frame's position */
			uint64_t complete = f.pos & ~(uint64_t)PYTHON_POS_GENERATOR, kept;
			if (mp_likely(m->pos == f.pos && m->parent == parent && PY_TOP_SLOT_CODE_IS(m, f.code))) {
				/* memoized only where the frame was complete (the same position of the
				 * same code object is now) */
				id = m->id;
				kept = complete;
			} else {
				if (!(kept = python_frame_kept(&f)))
					return python_intern_below(t, c, w);
				id = stack_child(t->cache, parent, mp_frame_python(c->prev_codes[n - 1], python_lasti(&f)));
				if (!id) {
					c->prev_n = n - 1;
					return 0;
				}
				if (kept == complete)
					*m = (python_top_slot_t){f.pos, parent, id PY_TOP_SLOT_CODE(f.code)};
			}
			c->prev[n - 1].pos = kept;
			c->prev_ids[n - 1] = id;
			return id;
		}
	}
	return python_intern_below(t, c, w);
}

/* The innermost frame of the thread, or NULL (no thread state, no Python frames). */
static inline py_frame_t *python_top(PyThreadState *ts)
{
	return ts ? PY_TOP_FRAME(ts) : NULL;
}

/* Writes down where the stack's n frames are (prev_at), when python_walk found them
 * elsewhere than the previous stack's, as deep as it: as after the thread's frames
 * moved to another chunk of its frame stack. Only then: python_caller_at's guesses are
 * right again from the next stack on. */
static __attribute__((noinline)) void python_note_frames(python_tcache_t *c, const py_frame_t *top, unsigned n)
{
	const py_frame_t *f = top;
	for (unsigned d = n; d-- > 0 && f; f = PY_FRAME_BACK(f))
		c->prev_at[d] = f;
}

#define PYTHON_REALIGN_FRAMES 4 /* frames from the innermost looked for among the previous stack's */
#define PYTHON_REALIGN_AMONG 8  /* the previous stack's innermost frames they are looked for among */

/* The stack when its innermost frame is not where the previous stack's was: a frame
 * below it changed, or (most often) the depth moved, which python_walk, comparing each
 * frame with the previous stack's at the same depth, would take for a stack different
 * all along, to be walked three times more. A frame at the address where one of the
 * previous stack's frames was tells the depth: each of the first few frames is looked
 * for among the previous stack's innermost few, then each frame is compared with the
 * previous stack's at its depth, and the guess holds if the stack ends exactly there
 * (a frame's address is only a hint: the positions decide). Else the stack is walked as
 * python_intern does. */
static __attribute__((noinline)) uint32_t python_intern_realign(mp_thread_t *t, python_tcache_t *c,
								 const py_frame_t *top)
{
	c->prev_top = top;
	unsigned pn = c->prev_n, n = 0;
	if (!c->prev_root && pn) {
		unsigned lo = pn > PYTHON_REALIGN_AMONG ? pn - PYTHON_REALIGN_AMONG : 0;
		const py_frame_t *f = top;
		for (unsigned i = 0; i < PYTHON_REALIGN_FRAMES && f && !n; i++, f = PY_FRAME_BACK(f))
			for (unsigned j = pn; j-- > lo;)
				if (c->prev_at[j] == f) {
					n = i + j + 1;
					break;
				}
	}
	if (n && n <= PY_MAX_FRAMES) {
		unsigned lim = n < pn ? n : pn, deeper = n - lim;
		const py_frame_t *f = top;
		for (; deeper && f; deeper--)
			f = PY_FRAME_BACK(f);
		python_compared_t r = python_compare(c, f, lim);
		unsigned same = (unsigned)(r.diff - c->prev);
		if (!deeper && r.q == c->prev && !r.f) { /* n frames, as guessed */
			if (mp_unlikely(r.moved))
				python_note_frames(c, top, n);
			const py_frame_t *fr[PY_MAX_FRAMES];
			python_frames(top, n - same, fr);
			return python_intern_frames(t, c, fr, n, same, 0);
		}
	}
	return python_intern(t, c, python_walk(c, top));
}

/* The stack of Python frames from top (the innermost) out. */
static inline __attribute__((always_inline)) uint32_t python_intern_top(mp_thread_t *t, python_tcache_t *c,
									 const py_frame_t *top)
{
	if (mp_unlikely(top != c->prev_top))
		return python_intern_realign(t, c, top);
	python_walked_t w = python_walk(c, top);
	if (mp_unlikely(w.moved) && !w.rest && w.q == c->prev)
		python_note_frames(c, top, c->prev_n);
	return python_intern(t, c, w);
}

static inline __attribute__((always_inline)) uint32_t python_stack_only(mp_thread_t *t, PyThreadState *ts)
{
	py_frame_t *top = python_top(ts);
	python_tcache_t *c = top ? python_tcache(t) : NULL;
	if (!c)
		return 0;
	return python_intern_top(t, c, top);
}

/* Mixed stacks: the Python frames, then the native frames inside the innermost
 * activation of the eval loop (the C code that the innermost Python line called, down to
 * the allocator). The native frames outside it are the interpreter's own, which the
 * Python frames already describe, so they are not unwound at all: libunwind is asked for
 * a few frames more than this thread needed last time, and for the whole stack only when
 * the eval loop is not among them. Without Python frames, the whole native stack. */
static unsigned python_find_eval(const uint64_t *ips, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (ips[i] >= python_eval_lo && ips[i] < python_eval_hi)
			return i;
	return n;
}

/* libunwind's answer: the native frames below the Python frames (see above) in ips[],
 * innermost first; returns their count. *cut: frames were left out. */
static unsigned python_native_unwind(python_tcache_t *c, bool pyframes, uint64_t *ips, bool *cut)
{
	unsigned nn, inner;
	if (pyframes && python_eval_hi) {
		/* ask for a few frames more than this thread needed lately; on a miss ask for
		 * twice as many, up to the whole stack */
		unsigned guess = c->mixed_guess ? c->mixed_guess : 8;
		for (;;) {
			if (guess > record_max_depth)
				guess = record_max_depth;
			bool whole;
			nn = native_backtrace(ips, guess, guess < record_max_depth, &whole, cut);
			inner = python_find_eval(ips, nn);
			if (inner < nn || whole || guess == record_max_depth)
				break;
			guess *= 2;
		}
		if (inner < nn) {
			*cut = false; /* the frames kept reach the eval loop */
			/* follow deeper needs at once, shallower ones slowly: the frames inside
			 * the eval loop, the eval loop's own and one spare */
			unsigned want = inner + 2, g = c->mixed_guess;
			c->mixed_guess = want >= g ? want : g - (g - want + 7) / 8;
		}
		return inner;
	}
	return native_backtrace(ips, record_max_depth, false, NULL, cut);
}

/* libunwind's answer below the Python frames (node `id`), where memprof's unwinder gave
 * none: its arrays of frames (4 KiB) in a frame of their own, so that the common path's
 * stays small (as record.c's record_stack_libunwind). */
static __attribute__((noinline)) uint32_t python_stack_libunwind(mp_thread_t *t, python_tcache_t *c, bool pyframes,
								  const unwind_chain_t *ch, uintptr_t ra, uint32_t id)
{
	uint64_t ips[STACK_MAX_FRAMES];
	bool cut;
	unsigned n = python_native_unwind(c, pyframes, ips, &cut);
	if (mp_unlikely(unwind_check) && ra)
		unwind_check_chain(ch, ips, n, cut);
	/* native frames cut short (more than MEMPROF_MAX_DEPTH before the eval loop, or in
	 * a stack without Python frames) hang from the truncation marker: below the Python
	 * frames, or at the root */
	return native_intern(t->cache, id, ips, n, cut);
}

/* `ra`, `fp`: where the hook was called from (RECORD_CALLER), for memprof's own
 * unwinder (unwind.h), which answers most stacks from its chain cache, with the node
 * interned for it last time; libunwind answers the rest. */
static inline __attribute__((always_inline)) uint32_t python_stack_mixed(mp_thread_t *t, PyThreadState *ts,
									  uintptr_t ra, uintptr_t fp)
{
	python_tcache_t *c = python_tcache(t);
	if (!c)
		return 0;
	py_frame_t *top = python_top(ts);
	bool pyframes = top != NULL;
	uint32_t id = pyframes ? python_intern_top(t, c, top) : 0;
	if (pyframes && !c->prev_n)
		pyframes = false; /* no complete frame: the whole native stack, as without Python frames */
	else if (pyframes && !id)
		return 0;
	/* memprof's unwinder: down to the eval loop below Python frames, else (no eval loop
	 * known, no complete Python frame) the whole stack, as python_native_unwind does */
	const unwind_chain_t *ch = NULL;
	if (ra) {
		bool eval = pyframes && python_eval_hi;
		ch = unwind_chain(t->unwind, ra, fp, eval ? python_eval_lo : 0,
				  eval ? python_eval_hi : 0, record_max_depth);
		if (ch && mp_likely(!unwind_check))
			return unwind_chain_node(ch, t->cache, id);
	}
	if (record_on_small_altstack())
		return native_intern(t->cache, id, NULL, 0, true);
	return python_stack_libunwind(t, c, pyframes, ch, ra, id);
}

/* With the GIL held, the thread holding it is the caller: its thread state, read as
 * _PyThreadState_GET() does. */
static inline PyThreadState *python_gil_tstate(void)
{
#if PY_VERSION_HEX < 0x030c0000
	return (PyThreadState *)_Py_atomic_load_relaxed(&python_runtime->gilstate.tstate_current);
#else
	return python_unchecked_get();
#endif
}

static uint32_t python_walk_stack_gil(mp_thread_t *t)
{
	return python_stack_only(t, python_gil_tstate());
}

static uint32_t python_walk_stack(mp_thread_t *t, bool gil, bool native, uintptr_t ra, uintptr_t fp)
{
	/* Without the GIL (RAW domain, malloc), the calling thread's own thread state from
	 * its thread-specific slot. */
	PyThreadState *ts = gil ? python_gil_tstate() : python_api.GILStateGet();
	if (native)
		return python_stack_mixed(t, ts, ra, fp);
	return python_stack_only(t, ts);
}

static void python_walk_fork_child(void)
{
	pthread_mutex_init(&python_code_lock, NULL);
	if (python_codes)
		memset(python_codes, 0, python_codes_cap * sizeof *python_codes);
	python_codes_n = 0;
	python_code_next = 1;
	pycode_rec_t *r = python_code_new;
	while (r) {
		pycode_rec_t *n = r->next;
		python_code_rec_free(r);
		r = n;
	}
	python_code_new = NULL;
	atomic_fetch_add(&python_generation, 1);
}

/* CPython's name for the allocators in place (_PyMem_GetCurrentAllocatorName), or NULL:
 * not known. 3.12's takes the allocators' lock without checking that the runtime has made
 * it yet, as its other allocator functions do. Before that (memprof's constructor) the
 * allocators are still the ones CPython was built with, and read as its name function
 * reads them: pymalloc's object allocator has no context (the debug hooks' have one) and
 * is not the raw one (as it is in a build without pymalloc). */
static const char *python_allocator_name(void)
{
#if PY_VERSION_HEX >= 0x030c0000 && PY_VERSION_HEX < 0x030d0000
	if (!python_runtime->allocators.mutex) {
		const PyMemAllocatorEx *obj = &python_runtime->allocators.standard.obj;
		const PyMemAllocatorEx *raw = &python_runtime->allocators.standard.raw;
		return !obj->ctx && obj->malloc != raw->malloc ? "pymalloc" : NULL;
	}
#endif
	return python_allocator_name_real ? python_allocator_name_real() : NULL;
}

static const char *python_walk_attach(bool mixed)
{
#if PY_VERSION_HEX < 0x030d0000
	if (!(python_runtime = dlsym(RTLD_DEFAULT, "_PyRuntime")))
		return "_PyRuntime";
#endif
#if PY_VERSION_HEX >= 0x030c0000
	*(void **)&python_unchecked_get = dlsym(RTLD_DEFAULT, "PyThreadState_GetUnchecked");
	if (!python_unchecked_get)
		*(void **)&python_unchecked_get = dlsym(RTLD_DEFAULT, "_PyThreadState_UncheckedGet");
	if (!python_unchecked_get)
		return "PyThreadState_GetUnchecked";
#endif
	void *eval = dlsym(RTLD_DEFAULT, "_PyEval_EvalFrameDefault");
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (eval && dladdr1(eval, &info, (void **)&sym, RTLD_DL_SYMENT) && sym) {
		python_eval_lo = (uint64_t)(uintptr_t)eval;
		python_eval_hi = python_eval_lo + (sym->st_size ? sym->st_size : 1);
	} else if (mixed) {
		mp_log("cannot find _PyEval_EvalFrameDefault: native frames are not interleaved with Python frames");
	}
	*(void **)&python_allocator_name_real = dlsym(RTLD_DEFAULT, "_PyMem_GetCurrentAllocatorName");
	python_code_watch();
	return NULL;
}

static void *python_walk_alloc_gil(void *ctx, void *(*malloc_fn)(void *, size_t),
				   void *(*calloc_fn)(void *, size_t, size_t), size_t n, size_t size, int allocator)
{
	return python_alloc_gil_with(ctx, malloc_fn, calloc_fn, n, size, allocator, python_walk_stack_gil);
}

#define PY_STR2(x) #x
#define PY_STR(x) PY_STR2(x)

const python_variant_t MP_PYTHON_VARIANT = {
	.version = PY_STR(PY_MAJOR_VERSION) "." PY_STR(PY_MINOR_VERSION),
	.attach = python_walk_attach,
	.stack = python_walk_stack,
	.alloc_gil = python_walk_alloc_gil,
	.take_new_code = python_walk_take_new_code,
	.fork_child = python_walk_fork_child,
	.allocator_name = python_allocator_name,
};
