/* pass: the single ordered aggregation pass.
 *
 * Peak per stack costs O(1) per event through epochs: peak_epoch advances whenever the
 * global heap reaches a new maximum. A stack whose epoch is behind has not changed since
 * that maximum, so before its first change in a newer epoch its live value *is* its value
 * at the latest peak: save it then. At the end a stack still in the current epoch kept
 * its snapshot; one behind it is unchanged since the peak, so its live value is the peak
 * value.
 *
 * Temporary allocations (heaptrack's notion, per thread): each thread's last allocation
 * is remembered; when the same thread frees that block before it allocates again, the
 * allocation was temporary. The block freed must be the one remembered (same address,
 * stack and size), so a block another thread freed and got back in between does not
 * count. A thread is a system thread (tid): a thread that frees in a thread-exit
 * destructor run after memprof saw it end has a second thread row (same tid), and its
 * free still pairs with the allocation it made before.
 */
#include "pass.h"
#include "hugemem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "addrmap.h"
#include "progress.h"
#include "stream.h"

#define PASS_AHEAD 16
#define PASS_PROGRESS_EVERY (1u << 16)

typedef struct pass_item {
	mp_event_t ev;
	uint32_t thread;
} pass_item_t;

/* Per thread: its last allocation (for temporary), and the block its last free released
 * with what that free counted, which an MP_AL_MMAP_REST event right after it takes back
 * (the mapping was cut, not freed). */
typedef struct pass_last {
	uint64_t addr;
	uint64_t size;
	uint32_t stack;
	uint32_t valid;
	struct {
		uint64_t wcount, wbytes;
		uint32_t stack;
		bool valid, temporary;
	} freed;
} pass_last_t;

/* A live block's stack in the live map, with this bit set for a block weighed exactly in
 * a sampled profile (mapped memory: every mapping is recorded). */
#define PASS_EXACT (1u << 31)

const pass_stack_t pass_stack_zero;

static inline void pass_touch(pass_t *p, pass_stack_t *s)
{
	uint32_t epoch = *p->epoch;
	if (s->epoch != epoch) {
		s->peak_bytes = s->live_bytes;
		s->peak_count = s->live_count;
		s->epoch = epoch;
	}
}

static inline unsigned pass_bucket(uint64_t size)
{
	return size ? 64u - (unsigned)__builtin_clzll(size) : 0;
}

/* In sampling mode (meta sample_bytes = N) an allocation of s bytes was recorded with
 * probability q = 1 - exp(-s/N): it stands for s/q bytes and 1/q allocations, which makes
 * every sum an unbiased estimate. The count is rounded up or down by a hash of the block
 * (the same at its free), so that it stays unbiased too. Exact mode: s bytes, 1 block. */
static inline void pass_weight(const pass_t *p, uint64_t addr, uint64_t size, bool exact, uint64_t *bytes,
			       uint64_t *count)
{
	if (p->sample_bytes <= 0 || size == 0 || exact) {
		*bytes = size;
		*count = 1;
		return;
	}
	double q = -expm1(-(double)size / p->sample_bytes);
	double c = 1.0 / q;
	*bytes = (uint64_t)llround((double)size * c);
	uint64_t h = (addr ^ size * 0x9E3779B97F4A7C15ull) * 0xC2B2AE3D27D4EB4Full;
	double u = (double)(h >> 11) / 9007199254740992.0;
	double fl = floor(c);
	*count = (uint64_t)fl + (u < c - fl ? 1 : 0);
}

/* A block released: its recorded size and its weight (pass_weight). */
typedef struct pass_released {
	uint64_t size, wbytes, wcount;
} pass_released_t;

/* Sizes of 4 GiB and more do not fit a map slot: they live in a side map `big`. */
static pass_released_t pass_release(pass_t *p, addrmap_t *big, uint64_t addr, const addrmap_entry_t *blk)
{
	pass_released_t r = {blk->a, 0, 0};
	addrmap_entry_t b;
	if (blk->a == UINT32_MAX && addrmap_take(big, addr, &b))
		r.size = (uint64_t)b.b << 32 | b.a;
	pass_weight(p, addr, r.size, blk->b & PASS_EXACT, &r.wbytes, &r.wcount);
	pass_stack_t *s = &p->stacks[blk->b & ~PASS_EXACT];
	pass_touch(p, s);
	s->live_bytes -= r.wbytes;
	s->live_count -= r.wcount;
	p->heap -= r.wbytes;
	p->live_blocks -= r.wcount;
	return r;
}

/* An MP_AL_MMAP_REST event (block ev at stack sid): the thread's last free (of the same
 * stack's block) cut a mapping rather than freed it, so it was neither a free nor a
 * temporary allocation's end; a mapping that was the thread's last allocation still is,
 * as what is left of it. */
static void pass_rest(pass_t *p, pass_last_t *l, const mp_event_t *ev, uint32_t sid)
{
	if (!l->freed.valid || l->freed.stack != sid)
		return;
	p->frees -= l->freed.wcount;
	if (l->freed.temporary) {
		pass_stack_t *st = &p->stacks[sid];
		st->temp_count -= l->freed.wcount;
		st->temp_bytes -= l->freed.wbytes;
		p->temporary -= l->freed.wcount;
		p->temporary_bytes -= l->freed.wbytes;
		*l = (pass_last_t){ev->addr, ev->size, sid, 1, {0}};
	}
	l->freed.valid = false;
}

static void pass_snapshot_end(pass_t *p, uint64_t ts)
{
	for (uint32_t i = 0; i < p->n_used; i++) {
		p->stacks[i].end_bytes = p->stacks[i].live_bytes;
		p->stacks[i].end_count = p->stacks[i].live_count;
	}
	p->has_end = true;
	p->end_ts = ts;
	p->end_heap = p->heap;
}

typedef struct pass_tid {
	int64_t tid;
	uint32_t index;
} pass_tid_t;

static int pass_tid_cmp(const void *a, const void *b)
{
	const pass_tid_t *x = a, *y = b;
	return x->tid != y->tid ? (x->tid < y->tid ? -1 : 1) : (x->index > y->index) - (x->index < y->index);
}

/* same[i]: the first stream index of the system thread (tid) that index i's thread is,
 * from the threads table; i itself for a thread without a row. */
static int pass_same_threads(db_t *db, const stream_t *st, uint32_t *same, size_t n)
{
	for (size_t i = 0; i < n; i++)
		same[i] = (uint32_t)i;
	sqlite3_stmt *q;
	pass_tid_t *t = calloc(n ? n : 1, sizeof *t);
	if (!t)
		return db_fail(db, "out of memory");
	size_t k = 0;
	if (sqlite3_prepare_v2(db->sql, "SELECT tid FROM threads WHERE id = ?", -1, &q, NULL) != SQLITE_OK) {
		free(t);
		return db_fail(db, "not a memprof database (%s)", sqlite3_errmsg(db->sql));
	}
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(q);
		sqlite3_bind_int64(q, 1, stream_thread_id(st, i));
		if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_INTEGER)
			t[k++] = (pass_tid_t){sqlite3_column_int64(q, 0), (uint32_t)i};
	}
	sqlite3_finalize(q);
	qsort(t, k, sizeof *t, pass_tid_cmp);
	for (size_t i = 1; i < k; i++)
		if (t[i].tid == t[i - 1].tid)
			same[t[i].index] = same[t[i - 1].index];
	free(t);
	return 0;
}

/* A pass under way: the stream, the live blocks and the events pulled ahead. */
struct pass_state {
	db_t *db;
	addrmap_t live, big;
	stream_t *st;
	/* Events are pulled PASS_AHEAD ahead of the one processed so that the live map's
	 * slot for each is prefetched: the map is far larger than the caches and the
	 * addresses are random, so this hides most of the cache-miss latency. */
	pass_item_t ahead[PASS_AHEAD];
	size_t head, n_ahead;
	bool eof;
	pass_last_t *last;
	uint32_t *same;
	size_t si; /* samples whose heap is set */
};

static void pass_state_free(pass_state_t *s)
{
	if (!s)
		return;
	progress_end();
	free(s->last);
	free(s->same);
	stream_close(s->st);
	addrmap_free(&s->live);
	addrmap_free(&s->big);
	free(s);
}

pass_state_t *pass_begin(pass_t *p, db_t *db, uint32_t *shared_epoch)
{
	memset(p, 0, sizeof *p);
	pass_state_t *s = calloc(1, sizeof *s);
	if (!s) {
		db_fail(db, "out of memory");
		return NULL;
	}
	s->db = db;
	p->epoch = shared_epoch ? shared_epoch : &p->peak_epoch;
	p->shared_peak = shared_epoch != NULL;
	p->n_stacks = db->n_nodes ? db->n_nodes : 1;
	/* (room for every node; only the part used is touched) */
	p->stacks = hugemem_calloc(p->n_stacks, sizeof *p->stacks);
	p->stack_slot = hugemem_calloc(p->n_stacks, sizeof *p->stack_slot);
	p->sample_heap = calloc(db->n_samples + 1, sizeof *p->sample_heap);
	if (!p->stacks || !p->stack_slot || !p->sample_heap || addrmap_init(&s->live, 1 << 16) || addrmap_init(&s->big, 16)) {
		db_fail(db, "out of memory");
		goto fail;
	}
	if (!(s->st = stream_open(db)))
		goto fail;
	size_t n_threads = stream_threads(s->st);
	if (!(s->last = calloc(n_threads ? n_threads : 1, sizeof *s->last)) ||
	    !(s->same = calloc(n_threads ? n_threads : 1, sizeof *s->same))) {
		db_fail(db, "out of memory");
		goto fail;
	}
	if (pass_same_threads(db, s->st, s->same, n_threads))
		goto fail;
	p->sample_bytes = db->sample_bytes;
	return s;
fail:
	pass_state_free(s);
	return NULL;
}

/* Fills the events pulled ahead: -1 on damaged input. */
static inline int pass_fill(pass_state_t *s)
{
	while (s->n_ahead < PASS_AHEAD && !s->eof) {
		pass_item_t *slot = &s->ahead[(s->head + s->n_ahead) % PASS_AHEAD];
		int r = stream_next(s->st, &slot->ev, &slot->thread);
		if (r < 0)
			return -1;
		if (r == 0) {
			s->eof = true;
			break;
		}
		addrmap_prefetch(&s->live, slot->ev.addr);
		s->n_ahead++;
	}
	return 0;
}

int pass_peek(pass_state_t *s, uint64_t *ts)
{
	if (pass_fill(s))
		return -1;
	if (!s->n_ahead)
		return 0;
	*ts = s->ahead[s->head].ev.ts;
	return 1;
}

static inline __attribute__((always_inline)) int pass_step_inline(pass_t *p, pass_state_t *s)
{
	db_t *db = s->db;
	if (pass_fill(s))
		return -1;
	if (s->n_ahead == 0)
		return 0;
	mp_event_t ev = s->ahead[s->head].ev;
	uint32_t thread = s->ahead[s->head].thread;
	s->head = (s->head + 1) % PASS_AHEAD;
	s->n_ahead--;
	if (p->events % PASS_PROGRESS_EVERY == 0 && !p->shared_peak) { /* (merge.c reports all passes') */
		size_t done, total;
		stream_progress(s->st, &done, &total);
		progress_update(done, total);
	}
	if (p->events++ == 0)
		p->first_ts = ev.ts;
	if (ev.ts > p->last_ts)
		p->last_ts = ev.ts;
	const db_sample_t *samples = db->samples;
	while (s->si < db->n_samples && samples[s->si].ts < ev.ts)
		p->sample_heap[s->si++] = p->heap;

	addrmap_entry_t old;
	switch (ev.kind) {
	case MP_EV_ALLOC: {
		uint32_t sid = ev.stack;
		if (db->stack_remap)
			sid = sid < db->n_stack_remap ? db->stack_remap[sid] : UINT32_MAX;
		if (sid >= p->n_stacks) {
			p->unknown_stacks++;
			sid = 0;
		}
		/* from here on the stack's index in p->stacks, in the live map and the
		 * threads' last allocations too */
		uint32_t *slot = &p->stack_slot[sid];
		if (!*slot)
			*slot = ++p->n_used;
		sid = *slot - 1;
		uint32_t small = ev.size < UINT32_MAX ? (uint32_t)ev.size : UINT32_MAX;
		bool exact = mp_allocator_is_mapping(ev.allocator);
		int had = addrmap_put(&s->live, ev.addr, small, sid | (exact ? PASS_EXACT : 0), &old);
		if (had > 0) {
			p->replaced_allocations++;
			pass_release(p, &s->big, ev.addr, &old);
		}
		if (had < 0 ||
		    (small == UINT32_MAX &&
		     addrmap_put(&s->big, ev.addr, (uint32_t)ev.size, (uint32_t)(ev.size >> 32), NULL) < 0))
			return db_fail(db, "out of memory");
		uint64_t wbytes, wcount;
		pass_weight(p, ev.addr, ev.size, exact, &wbytes, &wcount);
		pass_stack_t *st = &p->stacks[sid];
		pass_touch(p, st);
		pass_last_t *l = &s->last[s->same[thread]];
		if (ev.allocator == MP_AL_MMAP_REST) {
			pass_rest(p, l, &ev, sid);
		} else {
			*l = (pass_last_t){ev.addr, ev.size, sid, 1, {0}};
			st->allocations += wcount;
			st->allocated_bytes += wbytes;
			p->allocations += wcount;
			p->allocated_bytes += wbytes;
			p->by_allocator[ev.allocator] += wcount;
			unsigned b = pass_bucket(ev.size);
			p->hist_count[b] += wcount;
			p->hist_bytes[b] += wbytes;
		}
		st->live_bytes += wbytes;
		st->live_count += wcount;
		p->heap += wbytes;
		p->live_blocks += wcount;
		if (p->heap > p->peak_heap) {
			p->peak_heap = p->heap;
			p->peak_ts = ev.ts;
			if (!p->shared_peak)
				p->peak_epoch++;
		}
		break;
	}
	case MP_EV_FREE:
		if (addrmap_take(&s->live, ev.addr, &old)) {
			pass_released_t r = pass_release(p, &s->big, ev.addr, &old);
			/* weighed as its allocation was: in a sampled profile the frees are an
			 * estimate as the allocations are */
			p->frees += r.wcount;
			uint32_t sid = old.b & ~PASS_EXACT;
			pass_last_t *l = &s->last[s->same[thread]];
			l->freed.stack = sid;
			l->freed.wcount = r.wcount;
			l->freed.wbytes = r.wbytes;
			l->freed.valid = true;
			l->freed.temporary = false;
			if (l->valid && l->addr == ev.addr && l->stack == sid && l->size == r.size) {
				pass_stack_t *st = &p->stacks[sid];
				st->temp_count += r.wcount;
				st->temp_bytes += r.wbytes;
				p->temporary += r.wcount;
				p->temporary_bytes += r.wbytes;
				l->valid = 0;
				l->freed.temporary = true;
			}
		} else {
			p->unmatched_frees++;
			s->last[s->same[thread]].freed.valid = false;
		}
		break;
	case MP_EV_END:
		if (ev.addr == MP_END_RESTART) { /* Python started again: that was not the end */
			p->has_end = false;
			break;
		}
		p->end_markers++;
		pass_snapshot_end(p, ev.ts);
		break;
	}
	return 1;
}

void pass_progress(const pass_state_t *s, size_t *done, size_t *total)
{
	stream_progress(s->st, done, total);
}

int pass_step(pass_t *p, pass_state_t *s)
{
	return pass_step_inline(p, s);
}

int pass_finish(pass_t *p, pass_state_t *s, bool gone_at_peak)
{
	db_t *db = s->db;
	while (s->si < db->n_samples)
		p->sample_heap[s->si++] = p->heap;
	uint32_t epoch = *p->epoch;
	for (uint32_t i = 0; i < p->n_used; i++) {
		pass_stack_t *st = &p->stacks[i];
		if (gone_at_peak) {
			st->peak_bytes = 0;
			st->peak_count = 0;
		} else if (st->epoch != epoch) {
			st->peak_bytes = st->live_bytes;
			st->peak_count = st->live_count;
		}
		if (!p->has_end) {
			st->end_bytes = st->live_bytes;
			st->end_count = st->live_count;
		}
	}
	p->epoch = NULL;
	if (!p->has_end)
		p->end_heap = p->heap;
	if (!db->has_clock_start) {
		uint64_t start = p->events ? p->first_ts : 0;
		if (db->n_samples && (!p->events || db->samples[0].ts < start))
			start = db->samples[0].ts;
		db->clock_start = start;
	}
	pass_state_free(s);
	return 0;
}

void pass_abandon(pass_state_t *s)
{
	pass_state_free(s);
}

int pass_run(pass_t *p, db_t *db)
{
	pass_state_t *s = pass_begin(p, db, NULL);
	if (!s)
		return -1;
	int r;
	while ((r = pass_step_inline(p, s)) > 0)
		;
	if (r < 0) {
		pass_state_free(s);
		return -1;
	}
	return pass_finish(p, s, false);
}

void pass_free(pass_t *p)
{
	hugemem_free(p->stacks, p->n_stacks, sizeof *p->stacks);
	hugemem_free(p->stack_slot, p->n_stacks, sizeof *p->stack_slot);
	free(p->sample_heap);
	memset(p, 0, sizeof *p);
}

uint64_t pass_last_ticks(const pass_t *p, const db_t *db)
{
	uint64_t t = db->last_ticks;
	if (p->events && p->last_ts > t)
		t = p->last_ts;
	if (db->n_samples && db->samples[db->n_samples - 1].ts > t)
		t = db->samples[db->n_samples - 1].ts;
	if (t < db->clock_start)
		t = db->clock_start;
	return t;
}
