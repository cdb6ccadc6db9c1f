/* The aggregation pass: one walk over the time-ordered event stream holding the map of
 * live blocks, computing per stack node what every command reports (allocated, live at
 * the global heap peak, live at end, never freed) plus global totals and the heap value
 * at each RSS sample, and which allocations were temporary. All commands are views of
 * a pass_t. */
#ifndef MEMPROF_ANALYZER_PASS_H
#define MEMPROF_ANALYZER_PASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "memprof/format.h"

#define PASS_HIST_BUCKETS 65 /* 0: size 0; k >= 1: sizes in [2^(k-1), 2^k) */

typedef struct pass_stack {
	uint64_t allocations;     /* ALLOC events with this stack */
	uint64_t allocated_bytes; /* their total size */
	uint64_t live_bytes;      /* during the pass; after it: never freed (leaked) */
	uint64_t live_count;
	uint64_t peak_bytes; /* during the pass: snapshot for `epoch`; after it: at the peak */
	uint64_t peak_count;
	uint64_t end_bytes; /* live at the END marker (or at stream end without one) */
	uint64_t end_count;
	uint64_t temp_count; /* temporary allocations (see pass.c) */
	uint64_t temp_bytes;
	uint32_t epoch;
} pass_stack_t;

typedef struct pass {
	/* The figures of the stacks that events name, in the order first named (pass_stack
	 * finds a node's): most nodes of a large profile are only on the way to others
	 * (black's worker with mixed stacks: 464,000 of 1.27 million), and the pass touches
	 * these figures on every event. */
	pass_stack_t *stacks;
	uint32_t *stack_slot; /* by stack node id: its index in stacks + 1; 0: none */
	uint32_t n_stacks;    /* stack node ids: stack_slot's length */
	uint32_t n_used;      /* stacks' */

	uint64_t events;
	uint64_t allocations;
	uint64_t allocated_bytes;
	uint64_t frees;
	uint64_t unmatched_frees;      /* FREE of an address not live: ignored */
	uint64_t replaced_allocations; /* ALLOC of an address already live: old block dropped */
	uint64_t unknown_stacks;       /* ALLOC with a stack id outside stack_nodes: counted on 0 */
	uint64_t end_markers;
	uint64_t temporary; /* allocations freed by their thread before its next allocation */
	uint64_t temporary_bytes;
	uint64_t by_allocator[MP_AL_COUNT];
	uint64_t hist_count[PASS_HIST_BUCKETS];
	uint64_t hist_bytes[PASS_HIST_BUCKETS];

	uint64_t heap; /* after the pass: bytes never freed */
	uint64_t live_blocks;
	uint64_t peak_heap;
	uint64_t peak_ts;
	uint32_t peak_epoch;
	/* the epoch stacks are compared with (pass.c): peak_epoch, or, in a pass whose
	 * peak is several processes' together (merge.c), the one those passes share;
	 * NULL once the pass is over */
	uint32_t *epoch;
	bool shared_peak;
	bool has_end;
	uint64_t end_ts;
	uint64_t end_heap;
	uint64_t first_ts, last_ts; /* of events; 0/0 without events */

	uint64_t *sample_heap; /* heap after all events with ts <= samples[i].ts */
	double sample_bytes;   /* meta sample_bytes: > 0 in sampling mode */
} pass_t;

extern const pass_stack_t pass_stack_zero;

/* The figures of stack node s (s < n_stacks): all 0 for a node no event names. */
static inline const pass_stack_t *pass_stack(const pass_t *p, uint32_t s)
{
	uint32_t k = s < p->n_stacks ? p->stack_slot[s] : 0;
	return k ? &p->stacks[k - 1] : &pass_stack_zero;
}

/* Runs the pass over db's events. Returns 0, or -1 with db->err set. */
int pass_run(pass_t *p, db_t *db);

/* The pass an event at a time, for several profiles' passes run side by side in time
 * order (merge.c). pass_begin starts it (NULL with db->err set on failure); with
 * shared_epoch, the peak the stacks' peak figures are taken at is not the process's
 * own: the caller advances *shared_epoch whenever the processes' heaps together reach a
 * new maximum. p must not move until the pass is over. pass_peek: the next event's clock
 * value (1), none left (0), damaged input (-1, db->err set). pass_step: one event (1),
 * none left (0), or -1. pass_finish ends the pass and frees the state; gone_at_peak: the
 * process had ended before the shared peak (its figures there are 0). pass_abandon frees
 * a state after a failure. */
typedef struct pass_state pass_state_t;
pass_state_t *pass_begin(pass_t *p, db_t *db, uint32_t *shared_epoch);
int pass_peek(pass_state_t *s, uint64_t *ts);
int pass_step(pass_t *p, pass_state_t *s);
int pass_finish(pass_t *p, pass_state_t *s, bool gone_at_peak);
void pass_abandon(pass_state_t *s);
/* Event chunks read so far and in all (progress.h); a pass with a shared epoch leaves the
 * progress bar to its caller. */
void pass_progress(const pass_state_t *s, size_t *done, size_t *total);
void pass_free(pass_t *p);
/* End of the profile in clock ticks: the newest of last event, last sample, last_ticks. */
uint64_t pass_last_ticks(const pass_t *p, const db_t *db);

#endif
