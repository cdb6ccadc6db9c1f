/* memprof's own unwinder for native stacks: the frames between an allocator hook and
 * the innermost activation of the eval loop (mixed mode) or the outermost frame (native
 * mode), with a per-thread cache of whole chains. libunwind stays the unwinder of
 * record; this one only answers what it can answer exactly, and says so when it cannot
 * (the caller then asks libunwind).
 *
 * Exactness. On x86-64 a frame whose canonical frame address (CFA) is "rsp + c" or
 * "rbp + c" at its instruction pointer, with the return address saved at CFA - 8 (what
 * the call pushed) and rbp either left alone or saved at a fixed place from the CFA, is
 * unwound by its ip, rsp and rbp and those stack words alone. So a chain of such frames,
 * from the hook's return address `ra` and its CFA (the caller's rsp after the call), is a
 * function of (ra, cfa), of the caller's rbp if some CFA was computed from it, and of the
 * stack words the unwinding read (return addresses, and the saved rbp values some CFA was
 * computed from: code built without frame pointers saves rbp as a register of its own,
 * whose value changes from call to call and tells nothing), and nothing else: a chain
 * cached under that key is the chain again when each of those words still holds what it
 * held. Checking that is one load and one compare per word, in the order the
 * unwinding read them (so each address read is a live frame's), where libunwind looks
 * every frame up in its own cache. A frame's kind is read from its object's .eh_frame
 * (the FDE from .eh_frame_hdr's table, the object from _dl_find_object) once per
 * instruction pointer; a frame of any other kind (an expression, a realigned stack, a
 * signal frame, no unwind information, code the loader did not map: a JIT's) makes the
 * chain not memprof's to unwind. Every chain is checked against the stack before it is
 * used, a freshly unwound one included.
 *
 * After the program unloads a library (dlclose, or glibc unloading an iconv module
 * itself, which the writer notices within a flush interval), instruction pointers may
 * mean other code: the unwinder then stands down for good and libunwind unwinds every
 * stack.
 *
 * MEMPROF_CHECK_UNWIND=1 unwinds every stack both ways and counts the ones that differ
 * (libunwind's answer is the one recorded); the tests run mixed workloads with it. */
#ifndef MEMPROF_PRELOAD_UNWIND_H
#define MEMPROF_PRELOAD_UNWIND_H

#include "modules.h"
#include "mp.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Frames of one cached chain, the innermost (the hook's caller) first. */
#define UNWIND_CHAIN_MAX 32
#define UNWIND_NO_BP UINT32_MAX

#define UNWIND_MEMO 4
typedef struct unwind_chain {
	uintptr_t ra, cfa; /* the key: the hook's return address and its CFA */
	uintptr_t bp;      /* and the caller's rbp, when a frame's CFA was computed from it */
	uint16_t n;        /* return addresses checked: w[1] .. w[n] (w[0] = ra is the key) */
	uint16_t self;     /* leading frames of memprof's own (not recorded) */
	uint16_t end;      /* the frames recorded are w[self .. end) */
	bool whole;        /* part of the key: unwound to the end of the stack (stop_lo == stop_hi) */
	bool keyed_bp;     /* bp is part of the key */
	bool bp_reads;     /* a CFA was computed from an rbp restored from the stack (bpslot[] has entries) */
	/* the nodes interned for the frames below the last UNWIND_MEMO parents (node 0:
	 * none), most recent first */
	uint32_t parent[UNWIND_MEMO];
	uint32_t node[UNWIND_MEMO];
	uint32_t chain; /* the frames interned as a chain of their own (MP_FRAME_CHAINS), or 0 */
	uint64_t w[UNWIND_CHAIN_MAX + 1];
	uint32_t slot[UNWIND_CHAIN_MAX];   /* w[i + 1] lives at cfa + slot[i] */
	uint32_t bpslot[UNWIND_CHAIN_MAX]; /* frame i restores rbp = bpval[i] from cfa + bpslot[i] */
	uint64_t bpval[UNWIND_CHAIN_MAX];  /*   (UNWIND_NO_BP: it leaves rbp alone, or no CFA is
					    *   computed from what it restores) */
} unwind_chain_t;

/* Chains per thread: sets of UNWIND_WAYS chosen by (ra, cfa). Several ways, because
 * one call site at one stack depth is often reached along more than one path. A chain
 * is unwound into the spare entry, which takes a way only once the chain is complete
 * (the way's old chain becomes the spare), so a stack this unwinder refuses evicts
 * nothing; and a key refused is remembered for the next UNWIND_REFUSE_FOR times it
 * comes back (libunwind answers them at once). Defined here for unwind_chain's first
 * look, inline in the hooks. */
#define UNWIND_CACHE 128u
#define UNWIND_WAYS 4u
#define UNWIND_REFUSALS 64u

typedef struct unwind_refusal {
	uintptr_t ra, cfa;
	uint32_t left; /* more times to refuse at once; 0: free */
	bool whole;    /* the key as a chain's */
} unwind_refusal_t;

typedef struct unwind_cache {
	unwind_chain_t e[UNWIND_CACHE + 1]; /* the ways' chains and the spare one */
	uint8_t way[UNWIND_CACHE];           /* way -> its chain in e[], most recently used first */
	uint8_t spare;                       /* the chain in e[] no way holds */
	unwind_refusal_t refused[UNWIND_REFUSALS];
} unwind_cache_t;
struct stack_cache;

/* Set after a library was unloaded behind dlclose's back (glibc unloads iconv modules
 * itself; the writer sees the loader's count of unloads move): libunwind from then on. */
extern atomic_bool unwind_off;

static inline uint64_t unwind_key_hash(uintptr_t ra, uintptr_t cfa, bool whole)
{
	return (((uint64_t)ra * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)cfa * 0xC2B2AE3D27D4EB4Full) ^ whole) *
	       0x94D049BB133111EBull;
}

static inline unsigned unwind_set(uint64_t h)
{
	return (unsigned)(h >> 59) & (UNWIND_CACHE / UNWIND_WAYS - 1);
}

/* Reads the stack words that hold the chain's return addresses (the thread's own stack,
 * above the hook's frame: outside any object a sanitizer tracks). */
__attribute__((no_sanitize_address)) static inline uint64_t unwind_word(uintptr_t a)
{
	return *(const uint64_t *)a;
}

/* Whether the stack still holds the chain: every word its unwinding read, in the order
 * it read them (each address is then one of a live frame's, as the unwinding showed). */
static inline bool unwind_chain_holds(const unwind_chain_t *ch)
{
	if (mp_likely(!ch->bp_reads)) {
		for (unsigned i = 0; i < ch->n; i++)
			if (unwind_word(ch->cfa + ch->slot[i]) != ch->w[i + 1])
				return false;
		return true;
	}
	for (unsigned i = 0; i < ch->n; i++) {
		if (ch->bpslot[i] != UNWIND_NO_BP && unwind_word(ch->cfa + ch->bpslot[i]) != ch->bpval[i])
			return false;
		if (unwind_word(ch->cfa + ch->slot[i]) != ch->w[i + 1])
			return false;
	}
	return true;
}

extern bool unwind_check; /* MEMPROF_CHECK_UNWIND */
extern atomic_ulong unwind_checked, unwind_answered, unwind_differed;
/* MEMPROF_CHECK_UNWIND: chains unwound (the rest of the stacks answered came from the cache) */
extern atomic_ulong unwind_filled;

/* The chain from the hook's caller (ra, fp: the hook's frame address, RECORD_CALLER)
 * up to the first return address in
 * [stop_lo, stop_hi) (mixed mode: the innermost eval loop, not recorded), or with
 * stop_lo == stop_hi to the end of the stack (its outermost frame recorded), at most
 * `max` recorded frames. NULL when this unwinder cannot answer exactly (the caller asks
 * libunwind). c is the calling thread's cache (NULL: none, and NULL is returned). */
const unwind_chain_t *unwind_chain_lookup(unwind_cache_t *c, uintptr_t ra, uintptr_t fp, uint64_t stop_lo,
					  uint64_t stop_hi, unsigned max);
/* unwind_chain_lookup with its commonest case inline, without a call: the chain of the
 * set's most recently used way, which needs no rbp in its key. */
static inline __attribute__((always_inline)) const unwind_chain_t *
unwind_chain(unwind_cache_t *c, uintptr_t ra, uintptr_t fp, uint64_t stop_lo, uint64_t stop_hi, unsigned max)
{
	if (mp_likely(c)) {
		uintptr_t cfa = fp + 16;
		bool whole = stop_lo == stop_hi;
		const unwind_chain_t *ch = &c->e[c->way[unwind_set(unwind_key_hash(ra, cfa, whole)) * UNWIND_WAYS]];
		if (mp_likely(ch->ra == ra && ch->cfa == cfa && ch->whole == whole && !ch->keyed_bp &&
			      modules_generation() == 0 && !atomic_load_explicit(&unwind_off, memory_order_relaxed) &&
			      unwind_word(fp + 8) == ra && unwind_chain_holds(ch)))
			return ch;
	}
	return unwind_chain_lookup(c, ra, fp, stop_lo, stop_hi, max);
}
/* The stack of the chain's frames below `parent` in the thread's stack cache: below
 * the root (parent 0) the frames themselves, below Python frames one node splicing the
 * chain, interned once as a chain of its own (MP_FRAME_CHAINS, format.h). The node
 * remembered for one of the last few parents is reused. 0 after an internal failure. */
uint32_t unwind_chain_node_lookup(const unwind_chain_t *ch, struct stack_cache *sc, uint32_t parent);
/* The commonest case inline: the same parent as last time (the memo's first entry). */
static inline uint32_t unwind_chain_node(const unwind_chain_t *ch, struct stack_cache *sc, uint32_t parent)
{
	if (ch->parent[0] == parent && ch->node[0])
		return ch->node[0];
	return unwind_chain_node_lookup(ch, sc, parent);
}
/* MEMPROF_CHECK_UNWIND: counts the stack, and a difference between the chain (NULL: the
 * unwinder did not answer) and libunwind's frames ips[0..n) (`cut`: frames left out). */
void unwind_check_chain(const unwind_chain_t *ch, const uint64_t *ips, unsigned n, bool cut);
/* Native or mixed stacks are recorded: sets up the unwinder's tables. Its memory is
 * taken at start-up and when a thread starts, never later in the middle of the program
 * (a mapping made between the program's own would move where its libraries load). */
int unwind_init(void);
/* A thread's chain cache, or NULL (unwinder not set up, or no memory). */
unwind_cache_t *unwind_cache_new(void);
void unwind_cache_free(unwind_cache_t *c);
/* The loader's count of unloads, as the writer's periodic look sees it: once it moved
 * since start-up the unwinder stands down (a dlclose the hook saw already made it). */
void unwind_unloads_seen(unsigned long long unloads);

#endif
