/* memprof's own unwinder for the native part of a mixed stack: the frames between an
 * allocator hook and the innermost activation of the eval loop, with a per-thread cache
 * of whole chains. libunwind stays the unwinder of record; this one only answers what it
 * can answer exactly, and says so when it cannot (the caller then asks libunwind).
 *
 * Exactness. On x86-64 a frame whose canonical frame address (CFA) is "rsp + c" at its
 * instruction pointer, with the return address saved at CFA - 8 (what the call pushed),
 * is unwound by two facts alone: its ip and its rsp. So a chain of such frames, from the
 * hook's return address `ra` and its CFA (the caller's rsp after the call), is a function
 * of (ra, cfa) and of the stack words that hold the return addresses, and nothing else:
 * a chain cached under (ra, cfa) is the chain again when each of those words still
 * holds the return address it held. Checking that is one load and one compare per frame,
 * where libunwind looks every frame up in its own cache. Whether a frame is of that kind
 * is read from the .eh_frame of its object (the FDE found by libgcc's _Unwind_Find_FDE)
 * once per instruction pointer; a frame of any other kind (a frame pointer as the CFA's
 * base: alloca, realigned stacks; an expression; a signal frame; no unwind information)
 * makes the chain not memprof's to unwind. Every chain is checked against the stack
 * before it is used, a freshly unwound one included.
 *
 * After the program unloads a library (dlclose), instruction pointers may mean other
 * code: the unwinder then stands down for good and libunwind unwinds every stack.
 *
 * MEMPROF_CHECK_UNWIND=1 unwinds every stack both ways and counts the ones that differ
 * (libunwind's answer is the one recorded); the tests run mixed workloads with it. */
#ifndef MEMPROF_PRELOAD_UNWIND_H
#define MEMPROF_PRELOAD_UNWIND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Frames of one cached chain, the innermost (the hook's caller) first. */
#define UNWIND_CHAIN_MAX 24

typedef struct unwind_chain {
	uintptr_t ra, cfa; /* the key: the hook's return address and its CFA */
	uint16_t n;        /* return addresses walked: w[0] = ra .. w[n], w[n] in the eval loop */
	uint16_t self;     /* leading frames of memprof's own (not recorded) */
	uint32_t parent;   /* the caller's memo: the node interned below `parent` */
	uint32_t node;     /*   (0: none yet) */
	uint64_t w[UNWIND_CHAIN_MAX + 1];
	uint32_t slot[UNWIND_CHAIN_MAX]; /* w[i + 1] lives at cfa + slot[i] */
} unwind_chain_t;

typedef struct unwind_cache unwind_cache_t;

extern bool unwind_check; /* MEMPROF_CHECK_UNWIND */
extern atomic_ulong unwind_checked, unwind_answered, unwind_differed;

/* The chain from the hook's caller (ra, cfa) up to the first return address in
 * [stop_lo, stop_hi), at most `max` recorded frames: the recorded frames are
 * w[self .. n). NULL when this unwinder cannot answer exactly (the caller asks
 * libunwind). *cp is the calling thread's cache, created on first use. */
const unwind_chain_t *unwind_chain(unwind_cache_t **cp, uintptr_t ra, uintptr_t cfa, uint64_t stop_lo,
				   uint64_t stop_hi, unsigned max);
/* Remembers the node the caller interned for the chain unwind_chain just returned. */
static inline void unwind_chain_memo(const unwind_chain_t *ch, uint32_t parent, uint32_t node)
{
	unwind_chain_t *m = (unwind_chain_t *)ch;
	m->parent = parent;
	m->node = node;
}
void unwind_cache_free(unwind_cache_t *c);

#endif
