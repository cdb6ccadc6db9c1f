/* stream: k-way merge of the per-thread event chunks.
 *
 * Only the chunk index (id, thread, count, first_ts, raw_bytes) is read up front. Each
 * thread then owns one decompressed chunk at a time and a one-event lookahead; a binary
 * min-heap over the threads' lookaheads yields events in (ts, FREE < ALLOC < END,
 * thread) order. Rows of one thread are already in time order by id, so memory is one
 * chunk per thread whatever the length of the profile.
 *
 * Every chunk is checked on the way: zstd frame size against raw_bytes, every record
 * decodable, record count against the `count` column.
 *
 * The merge runs on a thread of its own (a worker), a few batches of events ahead of the
 * pass that reads them: reading the rows, decompressing and decoding them and the merge
 * were a quarter of `memprof report`'s time, and the pass itself waits on memory (its
 * map of live blocks), so the two overlap on two cores. A failure in the worker is
 * handed over in its place in the sequence: the events before it come first. Without a
 * worker (more than STREAM_MAX_WORKERS streams open at once, as merge.c's passes of many
 * processes, or none could be started) the batches are filled in place when needed.
 */
#include "stream.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* A chunk decompresses into memory we must allocate: refuse absurd sizes from a damaged
 * row instead of trying to allocate them. */
#define STREAM_MAX_RAW_BYTES (UINT64_C(1) << 31)

#define STREAM_BATCH 4096 /* events */
#define STREAM_BATCHES 4  /* filled ahead at most: ~590 KB */
#define STREAM_MAX_WORKERS 4

typedef struct stream_batch {
	mp_event_t ev[STREAM_BATCH];
	uint32_t thread[STREAM_BATCH];
	unsigned n;
	int end; /* after its n events: 1 more follow, 0 the end, -1 damaged input (stream's err) */
} stream_batch_t;

typedef struct stream_chunk {
	int64_t id;
	int64_t thread;
	uint64_t first_ts;
	uint64_t raw_bytes;
	int64_t count; /* -1 when the column is NULL */
} stream_chunk_t;

typedef struct stream_thread {
	const stream_chunk_t *chunks; /* this thread's rows, in id order */
	size_t n_chunks, next_chunk;
	const stream_chunk_t *chunk; /* being decoded, NULL before the first */
	uint8_t *buf;
	size_t cap;
	const uint8_t *pos, *end;
	mp_codec_t codec;
	int64_t decoded;
	uint32_t index; /* tie-break so the order never depends on the heap's history */
	mp_event_t cur; /* lookahead */
} stream_thread_t;

struct stream {
	db_t *db;
	sqlite3_stmt *blob_st;
	ZSTD_DCtx *dctx;
	stream_chunk_t *chunks;
	size_t n_chunks;
	stream_thread_t *threads;
	size_t n_threads;
	stream_thread_t **heap;
	size_t n_heap;
	atomic_size_t chunks_loaded;
	char err[sizeof ((db_t *)0)->err]; /* the merge's failure, for db->err once reached */

	stream_batch_t *batches; /* STREAM_BATCHES, a ring */
	unsigned filled, taken;  /* batches filled and read: filled - taken are ready */
	stream_batch_t *cur;     /* the batch being read */
	unsigned pos;            /* its next event */
	bool worker, stop;
	pthread_t tid;
	pthread_mutex_t lock; /* filled, taken, stop */
	pthread_cond_t cond;
};

static atomic_int stream_workers;

static int stream_kind_rank(uint8_t kind)
{
	return kind == MP_EV_FREE ? 0 : kind == MP_EV_ALLOC ? 1 : 2;
}

static inline bool stream_before(const stream_thread_t *a, const stream_thread_t *b)
{
	if (a->cur.ts != b->cur.ts)
		return a->cur.ts < b->cur.ts;
	int ra = stream_kind_rank(a->cur.kind), rb = stream_kind_rank(b->cur.kind);
	if (ra != rb)
		return ra < rb;
	return a->index < b->index;
}

static void stream_sift_down(stream_t *s, size_t i)
{
	stream_thread_t **h = s->heap;
	size_t n = s->n_heap;
	stream_thread_t *t = h[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && stream_before(h[c + 1], h[c]))
			c++;
		if (!stream_before(h[c], t))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = t;
}

/* The merge's failures go to s->err (the worker must not write db->err, which the pass's
 * own failures use): db->err gets it when the reader reaches it. */
__attribute__((format(printf, 2, 3))) static int stream_fail(stream_t *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	db_failv(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	return -1;
}

static int stream_chunk_fail(stream_t *s, const stream_chunk_t *c, const char *what)
{
	return stream_fail(s, "corrupt event chunk (events row %" PRId64 ", thread %" PRId64 "): %s", c->id,
			   c->thread, what);
}

static int stream_load_chunk(stream_t *s, stream_thread_t *t, const stream_chunk_t *c)
{
	if (c->raw_bytes > STREAM_MAX_RAW_BYTES)
		return stream_chunk_fail(s, c, "implausible raw_bytes");
	sqlite3_stmt *st = s->blob_st;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, c->id);
	/* The worker and the reader share the connection: the step and its message are read
	 * under the connection's mutex, or the message could be the other thread's. */
	sqlite3_mutex *mu = sqlite3_db_mutex(s->db->sql);
	sqlite3_mutex_enter(mu);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		stream_fail(s, "cannot read events row %" PRId64 ": %s", c->id,
			    rc == SQLITE_DONE ? "row vanished" : sqlite3_errmsg(s->db->sql));
		sqlite3_reset(st);
		sqlite3_mutex_leave(mu);
		return -1;
	}
	sqlite3_mutex_leave(mu);
	const void *blob = sqlite3_column_blob(st, 0);
	size_t len = (size_t)sqlite3_column_bytes(st, 0);
	size_t got = 0;
	if (len > 0) {
		unsigned long long fcs = ZSTD_getFrameContentSize(blob, len);
		if (fcs == ZSTD_CONTENTSIZE_ERROR) {
			sqlite3_reset(st);
			return stream_chunk_fail(s, c, "not a zstd frame");
		}
		if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != c->raw_bytes) {
			sqlite3_reset(st);
			return stream_chunk_fail(s, c, "size differs from raw_bytes");
		}
		/* Only now: raw_bytes has been checked against the frame header. */
		if (t->cap < c->raw_bytes) {
			free(t->buf);
			t->cap = c->raw_bytes;
			t->buf = malloc(t->cap);
			if (!t->buf) {
				t->cap = 0;
				sqlite3_reset(st);
				return stream_fail(s, "out of memory");
			}
		}
		got = ZSTD_decompressDCtx(s->dctx, t->buf, c->raw_bytes, blob, len);
		if (ZSTD_isError(got)) {
			sqlite3_reset(st);
			return stream_chunk_fail(s, c, ZSTD_getErrorName(got));
		}
	}
	sqlite3_reset(st);
	if (got != c->raw_bytes)
		return stream_chunk_fail(s, c, "size differs from raw_bytes");
	atomic_fetch_add_explicit(&s->chunks_loaded, 1, memory_order_relaxed);
	t->chunk = c;
	t->pos = t->buf;
	t->end = t->buf + got;
	t->decoded = 0;
	mp_codec_init(&t->codec, c->first_ts);
	return 0;
}

/* Fills t->cur with the thread's next event: 1, or 0 at its end, or -1. */
static int stream_advance(stream_t *s, stream_thread_t *t)
{
	for (;;) {
		if (t->pos < t->end) {
			const uint8_t *p = mp_decode_event(&t->codec, t->pos, t->end, &t->cur);
			if (!p)
				return stream_chunk_fail(s, t->chunk, "damaged record");
			t->pos = p;
			t->decoded++;
			return 1;
		}
		if (t->chunk && t->chunk->count >= 0 && t->decoded != t->chunk->count)
			return stream_chunk_fail(s, t->chunk, "record count differs from count");
		if (t->next_chunk == t->n_chunks) {
			free(t->buf);
			t->buf = NULL;
			t->cap = 0;
			return 0;
		}
		if (stream_load_chunk(s, t, &t->chunks[t->next_chunk++]))
			return -1;
	}
}

static int stream_read_index(stream_t *s)
{
	db_t *db = s->db;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT id, thread, count, first_ts, raw_bytes FROM events ORDER BY thread, id",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, "not a memprof database (%s)", sqlite3_errmsg(db->sql));
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (s->n_chunks == cap) {
			cap = cap ? 2 * cap : 256;
			stream_chunk_t *n = realloc(s->chunks, cap * sizeof *n);
			if (!n) {
				sqlite3_finalize(st);
				return db_fail(db, "out of memory");
			}
			s->chunks = n;
		}
		stream_chunk_t *c = &s->chunks[s->n_chunks++];
		c->id = sqlite3_column_int64(st, 0);
		c->thread = sqlite3_column_int64(st, 1);
		c->count = sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 2);
		c->first_ts = (uint64_t)sqlite3_column_int64(st, 3);
		int64_t raw = sqlite3_column_int64(st, 4);
		if (raw < 0) {
			sqlite3_finalize(st);
			return stream_chunk_fail(s, c, "negative raw_bytes");
		}
		c->raw_bytes = (uint64_t)raw;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, "cannot read events: %s", sqlite3_errmsg(db->sql));
	return 0;
}

static void stream_start_worker(stream_t *s);

stream_t *stream_open(db_t *db)
{
	stream_t *s = calloc(1, sizeof *s);
	if (!s) {
		db_fail(db, "out of memory");
		return NULL;
	}
	s->db = db;
	if (stream_read_index(s))
		goto fail;
	if (sqlite3_prepare_v2(db->sql, "SELECT data FROM events WHERE id = ?", -1, &s->blob_st, NULL) !=
	    SQLITE_OK) {
		db_fail(db, "cannot read events: %s", sqlite3_errmsg(db->sql));
		goto fail;
	}
	s->dctx = ZSTD_createDCtx();
	for (size_t i = 0; i < s->n_chunks; i++)
		if (i == 0 || s->chunks[i].thread != s->chunks[i - 1].thread)
			s->n_threads++;
	s->threads = calloc(s->n_threads ? s->n_threads : 1, sizeof *s->threads);
	s->heap = calloc(s->n_threads ? s->n_threads : 1, sizeof *s->heap);
	if (!s->dctx || !s->threads || !s->heap) {
		db_fail(db, "out of memory");
		goto fail;
	}
	size_t ti = 0;
	for (size_t i = 0; i < s->n_chunks; i++) {
		if (i > 0 && s->chunks[i].thread == s->chunks[i - 1].thread) {
			s->threads[ti - 1].n_chunks++;
			continue;
		}
		stream_thread_t *t = &s->threads[ti];
		t->chunks = &s->chunks[i];
		t->n_chunks = 1;
		t->index = (uint32_t)ti++;
	}
	for (size_t i = 0; i < s->n_threads; i++) {
		int r = stream_advance(s, &s->threads[i]);
		if (r < 0)
			goto fail;
		if (r > 0)
			s->heap[s->n_heap++] = &s->threads[i];
	}
	for (size_t i = s->n_heap / 2; i-- > 0;)
		stream_sift_down(s, i);
	if (!(s->batches = malloc(STREAM_BATCHES * sizeof *s->batches))) {
		db_fail(db, "out of memory");
		goto fail;
	}
	stream_start_worker(s);
	return s;
fail:
	if (s->err[0])
		memcpy(db->err, s->err, sizeof s->err);
	stream_close(s);
	return NULL;
}

/* The next event of the merge: 1, 0 at the end, -1 on damaged input (s->err). */
static int stream_pop(stream_t *s, mp_event_t *ev, uint32_t *thread)
{
	if (s->n_heap == 0)
		return 0;
	stream_thread_t *t = s->heap[0];
	*ev = t->cur;
	*thread = t->index;
	int r = stream_advance(s, t);
	if (r < 0)
		return -1;
	if (r == 0)
		s->heap[0] = s->heap[--s->n_heap];
	if (s->n_heap > 1)
		stream_sift_down(s, 0);
	return 1;
}

static void stream_fill(stream_t *s, stream_batch_t *b)
{
	unsigned n = 0;
	int r = 1;
	while (n < STREAM_BATCH && (r = stream_pop(s, &b->ev[n], &b->thread[n])) > 0)
		n++;
	b->n = n;
	b->end = r;
}

static void *stream_worker(void *arg)
{
	stream_t *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (s->filled - s->taken == STREAM_BATCHES && !s->stop)
			pthread_cond_wait(&s->cond, &s->lock);
		bool stop = s->stop;
		stream_batch_t *b = &s->batches[s->filled % STREAM_BATCHES];
		pthread_mutex_unlock(&s->lock);
		if (stop)
			return NULL;
		stream_fill(s, b);
		pthread_mutex_lock(&s->lock);
		s->filled++;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		if (b->end != 1)
			return NULL;
	}
}

static void stream_start_worker(stream_t *s)
{
	if (atomic_fetch_add(&stream_workers, 1) >= STREAM_MAX_WORKERS) {
		atomic_fetch_sub(&stream_workers, 1);
		return;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (pthread_create(&s->tid, NULL, stream_worker, s) != 0) {
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		atomic_fetch_sub(&stream_workers, 1);
		return;
	}
	s->worker = true;
}

/* Moves on to the next batch holding events: 1, or the end (0, or -1 with db->err set),
 * again at every call once reached. */
static int stream_turn(stream_t *s)
{
	for (;;) {
		stream_batch_t *b = s->cur;
		if (b && b->end != 1) {
			if (b->end < 0)
				memcpy(s->db->err, s->err, sizeof s->err);
			return b->end;
		}
		if (s->worker) {
			pthread_mutex_lock(&s->lock);
			if (b) {
				s->taken++;
				pthread_cond_broadcast(&s->cond);
			}
			while (s->filled == s->taken)
				pthread_cond_wait(&s->cond, &s->lock);
			pthread_mutex_unlock(&s->lock);
		} else {
			if (b)
				s->taken++;
			stream_fill(s, &s->batches[s->filled++ % STREAM_BATCHES]);
		}
		s->cur = &s->batches[s->taken % STREAM_BATCHES];
		s->pos = 0;
		if (s->cur->n)
			return 1;
	}
}

int stream_next(stream_t *s, mp_event_t *ev, uint32_t *thread)
{
	stream_batch_t *b = s->cur;
	if (!b || s->pos == b->n) {
		int r = stream_turn(s);
		if (r <= 0)
			return r;
		b = s->cur;
	}
	*ev = b->ev[s->pos];
	*thread = b->thread[s->pos];
	s->pos++;
	return 1;
}

size_t stream_threads(const stream_t *s)
{
	return s->n_threads;
}

int64_t stream_thread_id(const stream_t *s, size_t index)
{
	return index < s->n_threads && s->threads[index].n_chunks ? s->threads[index].chunks[0].thread : -1;
}

void stream_progress(const stream_t *s, size_t *done, size_t *total)
{
	*done = atomic_load_explicit(&s->chunks_loaded, memory_order_relaxed);
	*total = s->n_chunks;
}

void stream_close(stream_t *s)
{
	if (!s)
		return;
	if (s->worker) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->tid, NULL);
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		atomic_fetch_sub(&stream_workers, 1);
	}
	free(s->batches);
	for (size_t i = 0; i < s->n_threads; i++)
		free(s->threads[i].buf);
	free(s->threads);
	free(s->heap);
	free(s->chunks);
	sqlite3_finalize(s->blob_st);
	ZSTD_freeDCtx(s->dctx);
	free(s);
}
