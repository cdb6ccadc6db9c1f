/* The writer thread (see writer.h). */
#define _GNU_SOURCE
#include "writer.h"
#include "u64set.h"
#include "clock.h"
#include "fds.h"
#include "hotcode.h"
#include "mem.h"
#include "modules.h"
#include "mp.h"
#include "python.h"
#include "stack.h"
#include "sampler.h"
#include "thread.h"
#include "unwind.h"

#include <errno.h>
#include <fcntl.h>
#include <memprof/format.h>
#include <memprof/schema.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <sys/stat.h>

#define WRITER_CHUNK_BYTES (1u << 20) /* raw bytes per chunk before compression */
/* A thread's encoder buffer starts small and doubles while the thread keeps it full, so
 * that a program with many quiet threads does not pay a chunk's worth for each; it
 * halves again when a flush interval fills less than a quarter of it. All buffers
 * together grow to at most WRITER_RAW_BUDGET, taken first come: several busy threads
 * share it (smaller chunks, and the profiler's memory does not grow with the number of
 * threads). With 2 MiB, py_threads' 4 threads filled 512 KiB each; 1 MiB takes 0.9 MB off
 * its peak RSS (17.6 -> 16.7 MB, medians of 7, no change in time) for a file 4% larger
 * (7.16 -> 7.43 MB). A busy thread beside a quiet one (a main thread waiting in join)
 * fills chunks of 512 KiB instead of 1 MiB: py_json's work run so, 13.01 -> 13.23 MB
 * (+1.7%; session 14 measured 11-14% for it with the encoding of the time, and went
 * back to 2 MiB); py_json itself, one thread, keeps its 1 MiB chunks (12.94 -> 12.96
 * MB). 512 KiB in all cost py_threads' file 28%. */
#define WRITER_CHUNK_START (32u << 10)
#define WRITER_RAW_BUDGET (1u << 20)
/* zstd level 3 with smaller match tables than its default for 1 MiB inputs (2^17 and
 * 2^16 entries): the compressor's state is 888 KiB instead of 1,272 KiB, for files
 * about 1% larger (the py_json capture 12.58 -> 12.69 MB, black's 55.8 -> 56.6 MB,
 * py_threads' unchanged, recompressing the same chunks). */
#define WRITER_ZSTD_LEVEL 3
#define WRITER_ZSTD_HASH_LOG 16
#define WRITER_ZSTD_CHAIN_LOG 15
#define WRITER_ZSTD_WINDOW_LOG 20 /* WRITER_CHUNK_BYTES */

unsigned writer_flush_ms = 100;

typedef struct writer_enc {
	uint8_t *buf;
	size_t len, cap;
	uint32_t count;
	uint64_t first_ts, last_ts;
	uint64_t wts; /* the thread's timestamp in the word stream (thread_decode) */
	mp_codec_t codec;
	bool registered; /* its threads row is written */
	bool filled;     /* the buffer filled up since the last timer flush */
} writer_enc_t;

typedef struct writer_sample {
	uint64_t ts, rss;
} writer_sample_t;

static sqlite3 *writer_db;
static sqlite3_stmt *writer_st_source;
static sqlite3_stmt *writer_st_chunk, *writer_st_node, *writer_st_code, *writer_st_module,
	*writer_st_sample, *writer_st_meta, *writer_st_thread;
static ZSTD_CCtx *writer_zstd;
static uint8_t *writer_zbuf;
static size_t writer_zcap;
/* A busy thread's chunk is compressed as it grows, a slice at a time, so that the writer
 * takes the program's next blocks between slices: compressing a whole 1 MiB chunk at
 * once took the writer away from them for milliseconds, long enough for a thread making
 * events at full speed to queue THREAD_MAX_OUTSTANDING blocks and wait (py_threads
 * waited ~3,400 times). One chunk (one zstd frame) at a time: its encoder, its thread,
 * the bytes of its buffer compressed so far and the compressed bytes in writer_zbuf.
 * zstd reads the encoder's buffer in place (ZSTD_c_stableInBuffer), so the buffer is
 * neither moved nor resized while its frame is open. */
#define WRITER_SLICE (128u << 10)
static writer_enc_t *writer_zenc;
static mp_thread_t *writer_zthread;
static size_t writer_zin, writer_zout;
static pthread_t writer_thread;
static sem_t writer_sem;
static atomic_int writer_running;   /* thread started and not finished */
static atomic_int writer_stop;      /* final flush requested */
static atomic_int writer_finished;  /* file closed */
static atomic_uint writer_sync_req, writer_sync_done; /* writer_sync requests served */
static atomic_int writer_status_complete; /* meta status to write at the next commit */
static pid_t writer_pid;
static pthread_mutex_t writer_lock = PTHREAD_MUTEX_INITIALIZER; /* one cycle at a time */
static pthread_mutex_t writer_sample_lock = PTHREAD_MUTEX_INITIALIZER;
static writer_sample_t *writer_samples;
static size_t writer_samples_n, writer_samples_cap;
static size_t writer_raw_total; /* capacity of all threads' encoder buffers */
static bool writer_in_txn;
static uint64_t writer_last_commit_ns;
static uint64_t writer_last_ticks;
/* A write of the profile failed (a full disk, a file size limit, an I/O error): the
 * transaction was rolled back, and from then on the writer writes only why and when
 * recording stopped (a few rows, which a failed transaction's room in the -wal file
 * may still take), so that the file says so rather than look like a killed process's.
 * Events, stacks and samples are dropped. The stop's time is the last commit that went
 * through (the time its cycle began, when its events were taken), not the failure's:
 * what the rolled-back transaction held is lost. */
static bool writer_broken;
static uint64_t writer_cycle_ticks; /* clock_now() as this cycle began */
static uint64_t writer_data_end;    /* where the committed data ends (writer_committed) */
static bool writer_single_file; /* the journal out of WAL mode: one file, before an exec */
static bool writer_reopened; /* a descriptor of the profile was opened again (writer_fd_ok) */
/* A descriptor of the profile is the program's now (writer_files_ok): SQLite is never
 * called again; the events are taken from the threads and dropped (writer_broken). */
static bool writer_abandoned;
static void writer_files_ok(void);
static void writer_reconnect(void);
static int writer_connect(const char *path, bool create);

/* A commit went through, of the events taken at `at` (clock_now()): the data ends there,
 * or at its newest event or sample if later. */
static void writer_committed(uint64_t at)
{
	writer_data_end = writer_last_ticks > at ? writer_last_ticks : at;
}

/* ---- SQLite on memprof's own memory ----------------------------------------------- */

/* SQLite frees and allocates a few blocks per statement: they go through the reuse cache
 * (mem.c), without which nearly every free returned its page to the system. */
static void *writer_sq_malloc(int n) { return mem_reuse_alloc((size_t)n); }
static void writer_sq_free(void *p) { mem_reuse_free(p); }
static void *writer_sq_realloc(void *p, int n) { return mem_realloc(p, (size_t)n); }
static int writer_sq_size(void *p) { return (int)mem_usable(p); }
static int writer_sq_roundup(int n) { return (n + 15) & ~15; }
static int writer_sq_init(void *x) { return SQLITE_OK; }
static void writer_sq_shutdown(void *x) {}

static void *writer_zstd_alloc(void *opaque, size_t n) { return mem_alloc(n); }
static void writer_zstd_free(void *opaque, void *p) { mem_free(p); }

static void writer_write_failed(void)
{
	if (!writer_db || writer_abandoned)
		return;
	if (!sqlite3_get_autocommit(writer_db))
		sqlite3_exec(writer_db, "ROLLBACK", NULL, NULL, NULL);
	/* the -wal file's room for the rows saying so: what it holds moved into the file,
	 * when that can still grow (best effort: not while a reader holds it) */
	sqlite3_wal_checkpoint_v2(writer_db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	writer_in_txn = false;
	writer_broken = true;
}

/* Why the last statement failed: SQLite's message and, for an I/O error, the system's
 * ("disk I/O error (File too large)": a file size limit; "(No space left on device)"):
 * the last failed write's, else what SQLite kept. */
static const char *writer_why(const char *msg, char *buf, size_t n)
{
	int code = sqlite3_extended_errcode(writer_db) & 0xff, e = writer_io_errno();
	if (!e)
		e = sqlite3_system_errno(writer_db);
	if ((code != SQLITE_IOERR && code != SQLITE_CANTOPEN && code != SQLITE_FULL) || e <= 0)
		return msg;
	snprintf(buf, n, "%s (%s)", msg, strerror(e));
	return buf;
}

static int writer_exec(const char *sql)
{
	char *err = NULL, why[256];
	int rc = sqlite3_exec(writer_db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK) {
		/* the statement's start names it; the reason must fit in the line */
		mp_fail("cannot write the profile (%.32s%s): %s", sql, strlen(sql) > 32 ? "..." : "",
			writer_why(err ? err : sqlite3_errstr(rc), why, sizeof why));
		sqlite3_free(err);
		writer_write_failed();
		return -1;
	}
	return 0;
}

/* BEGIN and COMMIT, prepared once: sqlite3_exec would parse them again at every commit,
 * which keeps SQLite's parser and code generator (a third of its code) among the pages
 * the writer runs (hotcode.c). */
static sqlite3_stmt *writer_st_begin, *writer_st_commit;

static int writer_txn(sqlite3_stmt *st, const char *sql)
{
	if (!st)
		return writer_exec(sql);
	char why[256];
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		mp_fail("cannot write the profile (%s): %s", sql, writer_why(sqlite3_errmsg(writer_db), why, sizeof why));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		writer_write_failed();
	return rc == SQLITE_DONE ? 0 : -1;
}

static int writer_step(sqlite3_stmt *st)
{
	if (mp_unlikely(writer_broken) && (st != writer_st_meta || writer_abandoned)) {
		sqlite3_clear_bindings(st);
		return -1;
	}
	char why[256];
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		mp_fail("cannot write the profile: %s", writer_why(sqlite3_errmsg(writer_db), why, sizeof why));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		writer_write_failed();
	return rc == SQLITE_DONE ? 0 : -1;
}

void writer_set_meta(const char *key, const char *value)
{
	if (!writer_st_meta)
		return;
	sqlite3_bind_text(writer_st_meta, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(writer_st_meta, 2, value, -1, SQLITE_TRANSIENT);
	writer_step(writer_st_meta);
}

static void writer_meta_u64(const char *key, uint64_t v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
	writer_set_meta(key, buf);
}

static void writer_begin(void)
{
	if (!writer_in_txn && !writer_abandoned && writer_txn(writer_st_begin, "BEGIN") == 0)
		writer_in_txn = true;
}

/* ---- chunks ---------------------------------------------------------------------- */

/* The compression context, created with its parameters the first time (and again after
 * writer_zstd_drop). */
static int writer_zstd_open(void)
{
	if (writer_zstd)
		return 0;
	ZSTD_customMem cm = {writer_zstd_alloc, writer_zstd_free, NULL};
	writer_zstd = ZSTD_createCCtx_advanced(cm);
	if (!writer_zstd)
		return -1;
	/* parameters stay with the context across frames; the window a chunk needs at
	 * most; the frames compressed in slices read the encoder's buffer and write
	 * writer_zbuf in place (no copies in zstd's own buffers) */
	if (ZSTD_isError(ZSTD_CCtx_setParameter(writer_zstd, ZSTD_c_compressionLevel, WRITER_ZSTD_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(writer_zstd, ZSTD_c_hashLog, WRITER_ZSTD_HASH_LOG)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(writer_zstd, ZSTD_c_chainLog, WRITER_ZSTD_CHAIN_LOG)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(writer_zstd, ZSTD_c_windowLog, WRITER_ZSTD_WINDOW_LOG)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(writer_zstd, ZSTD_c_stableInBuffer, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(writer_zstd, ZSTD_c_stableOutBuffer, 1))) {
		ZSTD_freeCCtx(writer_zstd);
		writer_zstd = NULL;
		return -1;
	}
	return 0;
}

/* Drops the context with a frame left open (an error, or a fork's child): resetting it
 * would keep a count of input it was shown but did not compress yet, which the next
 * frame would take as its own. */
static void writer_zstd_drop(void)
{
	ZSTD_freeCCtx(writer_zstd);
	writer_zstd = NULL;
	writer_zenc = NULL;
}

/* Whether the encoder's buffer may take `cap` bytes: shrinking always, growing up to a
 * chunk and within the budget of all buffers. */
static bool writer_enc_fits(const writer_enc_t *e, size_t cap)
{
	return cap <= e->cap || (cap <= WRITER_CHUNK_BYTES && writer_raw_total + cap - e->cap <= WRITER_RAW_BUDGET);
}

/* Whether the encoder's buffer may still double (writer_consume's rule). */
static bool writer_enc_growable(const writer_enc_t *e)
{
	return writer_enc_fits(e, 2 * e->cap);
}

/* The compressed chunk (z bytes in writer_zbuf) into the chunks table; the encoder
 * starts a new chunk. */
static void writer_chunk_write(mp_thread_t *t, writer_enc_t *e, size_t z)
{
	if (writer_broken) {
		e->len = 0;
		e->count = 0;
		return;
	}
	writer_begin();
	sqlite3_bind_int64(writer_st_chunk, 1, t->id);
	sqlite3_bind_int64(writer_st_chunk, 2, e->count);
	sqlite3_bind_int64(writer_st_chunk, 3, (sqlite3_int64)e->first_ts);
	sqlite3_bind_int64(writer_st_chunk, 4, (sqlite3_int64)e->last_ts);
	sqlite3_bind_int64(writer_st_chunk, 5, (sqlite3_int64)e->len);
	sqlite3_bind_blob(writer_st_chunk, 6, writer_zbuf, (int)z, SQLITE_STATIC);
	writer_step(writer_st_chunk);
	if (e->last_ts > writer_last_ticks)
		writer_last_ticks = e->last_ts;
	e->len = 0;
	e->count = 0;
}

/* A chunk that could not be compressed (memory short: recording has stopped, said once)
 * is counted as dropped, so that its buffer takes the events still queued. */
static void writer_chunk_drop(writer_enc_t *e)
{
	atomic_fetch_add(&thread_dropped, e->count);
	e->len = 0;
	e->count = 0;
}

/* MEMPROF_TEST_FAIL_COMPRESS=K (tests only): the K-th time writer_zroom asks for
 * memory, it is refused, as when memory is short. */
static long writer_test_zfail;

/* writer_zbuf with room for a chunk of `len` raw bytes compressed. */
static bool writer_zroom(size_t len)
{
	size_t bound = ZSTD_compressBound(len);
	if (bound <= writer_zcap)
		return true;
	uint8_t *nb = writer_test_zfail > 0 && --writer_test_zfail == 0 ? NULL : mem_realloc(writer_zbuf, bound);
	if (!nb) {
		mp_fail("out of memory compressing events");
		return false;
	}
	writer_zbuf = nb;
	writer_zcap = bound;
	return true;
}

/* Compresses the open frame's next bytes (ZSTD_e_continue), or all of them and closes
 * the frame (ZSTD_e_end); false on an error (the frame is dropped, said once). */
static bool writer_zstep(ZSTD_EndDirective end)
{
	writer_enc_t *e = writer_zenc;
	ZSTD_inBuffer in = {e->buf, e->len, writer_zin};
	ZSTD_outBuffer out = {writer_zbuf, writer_zcap, writer_zout};
	size_t left;
	do
		left = ZSTD_compressStream2(writer_zstd, &out, &in, end);
	while (end == ZSTD_e_end && left && !ZSTD_isError(left) && out.pos < out.size);
	writer_zin = in.pos;
	writer_zout = out.pos;
	if (ZSTD_isError(left) || (end == ZSTD_e_end && left)) {
		mp_fail("cannot compress events: %s", ZSTD_isError(left) ? ZSTD_getErrorName(left) : "no room");
		writer_zstd_drop();
		return false;
	}
	return true;
}

/* Closes the open frame, if any, and writes its chunk. */
static void writer_zfinish(void)
{
	writer_enc_t *e = writer_zenc;
	if (!e)
		return;
	if (!writer_zstep(ZSTD_e_end)) {
		writer_chunk_drop(e);
		return;
	}
	writer_zenc = NULL;
	writer_chunk_write(writer_zthread, e, writer_zout);
}

/* Compresses the thread's chunk as far as it holds whole slices, opening its frame if
 * none is open. Called (writer_consume) for the open frame's chunk when it holds a new
 * slice, or when no frame is open for a chunk that holds one at its full size (its
 * buffer will not grow, so it will not move). */
static void writer_zslice(mp_thread_t *t, writer_enc_t *e)
{
	if (!writer_zenc) {
		if (writer_zstd_open() < 0 || !writer_zroom(e->cap + MP_ENC_MAX_RECORD))
			return;
		ZSTD_CCtx_reset(writer_zstd, ZSTD_reset_session_only);
		writer_zenc = e;
		writer_zthread = t;
		writer_zin = writer_zout = 0;
	}
	writer_zstep(ZSTD_e_continue);
}

static void writer_chunk_flush(mp_thread_t *t, writer_enc_t *e)
{
	if (writer_zenc == e) {
		writer_zfinish();
		return;
	}
	if (!e->count)
		return;
	writer_zfinish(); /* one frame at a time: another thread's chunk first */
	if (writer_zstd_open() < 0) {
		mp_fail("out of memory compressing events");
		writer_chunk_drop(e);
		return;
	}
	if (!writer_zroom(e->len)) {
		writer_chunk_drop(e);
		return;
	}
	size_t z = ZSTD_compress2(writer_zstd, writer_zbuf, writer_zcap, e->buf, e->len);
	if (ZSTD_isError(z)) {
		mp_fail("cannot compress events: %s", ZSTD_getErrorName(z));
		writer_chunk_drop(e);
		return;
	}
	writer_chunk_write(t, e, z);
}

static writer_enc_t *writer_enc(mp_thread_t *t)
{
	writer_enc_t *e = t->writer_data;
	if (e)
		return e;
	e = mem_alloc(sizeof *e);
	if (e)
		e->buf = mem_alloc((e->cap = WRITER_CHUNK_START) + MP_ENC_MAX_RECORD);
	if (!e || !e->buf) {
		mem_free(e);
		return NULL;
	}
	writer_raw_total += e->cap;
	t->writer_data = e;
	char path[64], name[64] = "";
	snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)t->tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, name, sizeof name - 1);
		close(fd);
		name[n > 0 ? n : 0] = 0;
		name[strcspn(name, "\n")] = 0;
	}
	writer_begin();
	sqlite3_bind_int64(writer_st_thread, 1, t->id);
	sqlite3_bind_int64(writer_st_thread, 2, t->tid);
	sqlite3_bind_text(writer_st_thread, 3, name, -1, SQLITE_TRANSIENT);
	writer_step(writer_st_thread);
	return e;
}

/* Gives the encoder buffer `cap` bytes (it holds e->len of them); false if that would
 * pass the budget or the limit, or memory is short. */
static bool writer_enc_resize(writer_enc_t *e, size_t cap)
{
	if (!writer_enc_fits(e, cap))
		return false;
	uint8_t *nb = mem_realloc(e->buf, cap + MP_ENC_MAX_RECORD);
	if (!nb)
		return false;
	writer_raw_total = writer_raw_total + cap - e->cap;
	e->buf = nb;
	e->cap = cap;
	return true;
}

static void writer_consume(mp_thread_t *t, writer_enc_t *e, const uint64_t *w, unsigned n)
{
	for (unsigned i = 0; i < n;) {
		mp_event_t ev;
		i += thread_decode(&w[i], &e->wts, &ev);
		if (!e->count) {
			e->first_ts = ev.ts;
			mp_codec_init(&e->codec, e->first_ts);
		}
		uint8_t *end = mp_encode_event(&e->codec, e->buf + e->len, &ev);
		e->len = (size_t)(end - e->buf);
		e->count++;
		e->last_ts = ev.ts;
		if (e->len >= e->cap) {
			e->filled = true;
			if (writer_zenc == e || !writer_enc_resize(e, 2 * e->cap))
				writer_chunk_flush(t, e);
		} else if (e->len >= WRITER_SLICE &&
			   (writer_zenc ? writer_zenc == e && e->len - writer_zin >= WRITER_SLICE : !writer_enc_growable(e))) {
			writer_zslice(t, e);
		}
	}
}

/* Takes the events of the thread's sealed blocks, and on the timer every event it has
 * published. */
static void writer_drain(mp_thread_t *t, void *arg)
{
	bool timer = *(bool *)arg;
	if (!t->rd)
		return;
	writer_enc_t *e = writer_enc(t);
	if (!e)
		return;
	for (;;) {
		thread_block_t *b = t->rd;
		thread_block_t *next = atomic_load_explicit(&b->next, memory_order_acquire);
		/* The block the thread is filling is read only on the timer: its count is
		 * stored on every event, and reading it often would bounce that cache line
		 * between the program's core and the writer's. */
		if (!next && !timer)
			break;
		unsigned c = atomic_load_explicit(&b->count, memory_order_acquire);
		if (c > t->rd_pos) {
			writer_consume(t, e, &b->w[t->rd_pos], c - t->rd_pos);
			t->rd_pos = c;
		}
		if (!next)
			break;
		t->rd = next;
		t->rd_pos = 0;
		thread_block_release(t, b);
	}
	if (timer) {
		bool quiet = !e->filled && e->len < e->cap / 4;
		writer_chunk_flush(t, e);
		e->filled = false;
		if (quiet && e->cap > WRITER_CHUNK_START)
			writer_enc_resize(e, e->cap / 2);
	}
}

static void writer_thread_gone(mp_thread_t *t)
{
	writer_enc_t *e = t->writer_data;
	if (!e)
		return;
	writer_chunk_flush(t, e);
	writer_raw_total -= e->cap;
	mem_free(e->buf);
	mem_free(e);
	t->writer_data = NULL;
}

/* ---- dimension tables -------------------------------------------------------------- */

/* ---- Python source files as they were (the sources table) ------------------------- */

static char writer_cwd[4096];         /* the process's working directory at start */
static u64set_t writer_sources_seen; /* hashes of the file names recorded */

void writer_note_cwd(const char *cwd)
{
	snprintf(writer_cwd, sizeof writer_cwd, "%s", cwd);
}

static uint64_t writer_name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a, never 0 below */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h | 1;
}

static void writer_source(const char *name)
{
	/* (a hash collision takes one file for another: its row is then missing, which only
	 * leaves its check out) */
	if (!name || !name[0] || name[0] == '<' || u64set_add(&writer_sources_seen, writer_name_hash(name)) != 1)
		return;
	char path[4096];
	const char *at = name;
	if (name[0] != '/' && writer_cwd[0]) {
		if ((size_t)snprintf(path, sizeof path, "%s/%s", writer_cwd, name) >= sizeof path)
			return;
		at = path;
	}
	int saved = errno;
	struct stat st;
	int rc = stat(at, &st);
	errno = saved;
	if (rc != 0 || !S_ISREG(st.st_mode))
		return;
	sqlite3_bind_text(writer_st_source, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(writer_st_source, 2, (sqlite3_int64)st.st_size);
	sqlite3_bind_int64(writer_st_source, 3, (sqlite3_int64)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
	writer_step(writer_st_source);
}

static void writer_dimensions(void)
{
	stack_node_rec_t *nodes;
	unsigned n = stack_take_new(&nodes);
	if (n)
		writer_begin();
	for (unsigned i = 0; i < n; i++) {
		sqlite3_bind_int64(writer_st_node, 1, nodes[i].id);
		sqlite3_bind_int64(writer_st_node, 2, nodes[i].parent);
		sqlite3_bind_int64(writer_st_node, 3, (sqlite3_int64)nodes[i].frame);
		writer_step(writer_st_node);
	}
	mem_free(nodes);

	for (pycode_rec_t *r = python_take_new_code(), *nx; r; r = nx) {
		nx = r->next;
		writer_begin();
		sqlite3_bind_int64(writer_st_code, 1, r->id);
		sqlite3_bind_text(writer_st_code, 2, r->filename ? r->filename : "?", -1, SQLITE_STATIC);
		sqlite3_bind_text(writer_st_code, 3, r->name ? r->name : "?", -1, SQLITE_STATIC);
		sqlite3_bind_text(writer_st_code, 4, r->qualname ? r->qualname : "?", -1, SQLITE_STATIC);
		sqlite3_bind_int64(writer_st_code, 5, r->firstlineno);
		sqlite3_bind_blob(writer_st_code, 6, r->linetable ? (const void *)r->linetable : "", (int)r->linetable_len,
				  SQLITE_STATIC);
		writer_step(writer_st_code);
		writer_source(r->filename);
		python_code_rec_free(r);
	}

	for (module_rec_t *m = modules_take_new(), *nx; m; m = nx) {
		nx = m->next;
		writer_begin();
		sqlite3_bind_text(writer_st_module, 1, m->path, -1, SQLITE_STATIC);
		sqlite3_bind_text(writer_st_module, 2, m->build_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(writer_st_module, 3, (sqlite3_int64)m->base);
		sqlite3_bind_int64(writer_st_module, 4, (sqlite3_int64)m->lo);
		sqlite3_bind_int64(writer_st_module, 5, (sqlite3_int64)m->hi);
		sqlite3_bind_int64(writer_st_module, 6, (sqlite3_int64)m->ts);
		sqlite3_bind_int64(writer_st_module, 7, (sqlite3_int64)m->gen);
		writer_step(writer_st_module);
		modules_rec_free(m);
	}

	pthread_mutex_lock(&writer_sample_lock);
	writer_sample_t *s = writer_samples;
	size_t sn = writer_samples_n;
	writer_samples = NULL;
	writer_samples_n = writer_samples_cap = 0;
	pthread_mutex_unlock(&writer_sample_lock);
	if (sn)
		writer_begin();
	for (size_t i = 0; i < sn; i++) {
		sqlite3_bind_int64(writer_st_sample, 1, (sqlite3_int64)s[i].ts);
		sqlite3_bind_int64(writer_st_sample, 2, (sqlite3_int64)s[i].rss);
		writer_step(writer_st_sample);
		if (s[i].ts > writer_last_ticks)
			writer_last_ticks = s[i].ts;
	}
	mem_free(s);
}

void writer_add_sample(uint64_t ts, uint64_t rss)
{
	pthread_mutex_lock(&writer_sample_lock);
	if (writer_samples_n == writer_samples_cap) {
		size_t ncap = writer_samples_cap ? writer_samples_cap * 2 : 256;
		writer_sample_t *ns = mem_realloc(writer_samples, ncap * sizeof *ns);
		if (!ns) {
			pthread_mutex_unlock(&writer_sample_lock);
			return;
		}
		writer_samples = ns;
		writer_samples_cap = ncap;
	}
	writer_samples[writer_samples_n++] = (writer_sample_t){ts, rss};
	pthread_mutex_unlock(&writer_sample_lock);
}

/* The meta rows every commit rewrites, in the transaction (begun here if need be). After
 * a failed write (writer_broken) the data ends, and recording stopped, at the last commit
 * that went through. */
static void writer_meta_rows(bool complete)
{
	writer_begin();
	char buf[64];
	snprintf(buf, sizeof buf, "%.3f", clock_ticks_per_sec());
	writer_set_meta("clock_ticks_per_sec", buf);
	writer_meta_u64("last_ticks", writer_broken ? writer_data_end : writer_last_ticks);
	writer_meta_u64("dropped_events", atomic_load(&thread_dropped));
	writer_meta_u64("queued_bytes_peak", thread_queued_peak_bytes());
	uint64_t stop_ticks;
	const char *stop = mp_stopped(&stop_ticks);
	if (stop) {
		writer_set_meta("stopped_reason", stop);
		writer_meta_u64("stopped_ticks", writer_broken && writer_data_end < stop_ticks ? writer_data_end : stop_ticks);
	}
	writer_set_meta("status", complete ? "complete" : "running");
}

/* One pass: drain all threads; on the timer (or at the end) also write the dimension
 * tables and commit. Dimension rows are taken after the events, so every node an event
 * refers to is in the same commit. */
static void writer_cycle(bool final)
{
	uint64_t now = clock_mono_ns();
	bool timer = final || now - writer_last_commit_ns >= (uint64_t)writer_flush_ms * 1000000u;
	writer_cycle_ticks = clock_now();
	if (!writer_abandoned) {
		writer_files_ok();
		hotcode_tick(now);
	} else {
		hotcode_stop(); /* (nothing of memprof's opened or kept open any more) */
	}
	modules_scan_if_changed();
	thread_foreach(writer_drain, &timer);
	thread_reap(writer_thread_gone);
	if ((!timer && !writer_reopened) || writer_abandoned)
		return;
	writer_dimensions();
	writer_meta_rows(atomic_load(&writer_status_complete));
	if (writer_in_txn) {
		if (writer_txn(writer_st_commit, "COMMIT") == 0 && !writer_broken) {
			writer_committed(writer_cycle_ticks);
		}
		writer_in_txn = false;
	}
	/* Before an exec the file is left as one file (no -wal, -shm beside it), as after a
	 * clean exit; if the exec fails, back to WAL for the next commits. */
	if (writer_reopened)
		writer_reconnect();
	if (!writer_db)
		return;
	bool want_single = atomic_load(&writer_status_complete);
	if (want_single != writer_single_file) {
		sqlite3_exec(writer_db, want_single ? "PRAGMA journal_mode=DELETE" : "PRAGMA journal_mode=WAL", NULL,
			     NULL, NULL);
		writer_single_file = want_single;
	}
	writer_last_commit_ns = now;
}

/* Every prepared statement of the connection. */
static sqlite3_stmt **const writer_statements[] = {
	&writer_st_chunk, &writer_st_node,   &writer_st_code,   &writer_st_module, &writer_st_sample,
	&writer_st_meta,  &writer_st_thread, &writer_st_source, &writer_st_begin,  &writer_st_commit};

/* Forgets the statements, finalizing them first if `finalize`. */
static void writer_forget_statements(bool finalize)
{
	for (size_t i = 0; i < sizeof writer_statements / sizeof writer_statements[0]; i++) {
		if (finalize)
			sqlite3_finalize(*writer_statements[i]);
		*writer_statements[i] = NULL;
	}
}

/* Finalizes the statements and closes the connection (its descriptors with it). */
static void writer_disconnect(void)
{
	writer_forget_statements(true);
	sqlite3_close(writer_db);
	writer_db = NULL;
}

static void writer_close(void)
{
	writer_meta_rows(true);
	if (writer_in_txn && writer_txn(writer_st_commit, "COMMIT") < 0) {
		/* rolled back (writer_broken): the rows of the stop alone, once more */
		writer_meta_rows(true);
		writer_txn(writer_st_commit, "COMMIT");
	}
	writer_in_txn = false;
	sqlite3_exec(writer_db, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;", NULL, NULL, NULL);
	writer_disconnect();
}

static _Atomic pid_t writer_tid_;

pid_t writer_tid(void)
{
	return atomic_load(&writer_tid_);
}

static void *writer_main(void *arg)
{
	mp_guard = 1; /* everything this thread allocates is memprof's own */
	atomic_store(&writer_tid_, (pid_t)syscall(SYS_gettid));
	pthread_setname_np(pthread_self(), "memprof-writer");
	pthread_mutex_lock(&writer_lock); /* hotcode's state is the cycles' */
	hotcode_tick(clock_mono_ns());    /* start-up is over */
	pthread_mutex_unlock(&writer_lock);
	for (;;) {
		struct timespec ts = clock_deadline((uint64_t)writer_flush_ms * 1000000u / 4);
		sem_clockwait(&writer_sem, CLOCK_MONOTONIC, &ts);
		while (sem_trywait(&writer_sem) == 0)
			;
		bool stop = atomic_load(&writer_stop);
		unsigned req = atomic_load(&writer_sync_req);
		pthread_mutex_lock(&writer_lock);
		if (writer_db)
			writer_cycle(stop || req != atomic_load(&writer_sync_done));
		atomic_store(&writer_sync_done, req);
		if (stop && writer_db && !writer_abandoned)
			writer_close();
		pthread_mutex_unlock(&writer_lock);
		if (stop)
			break;
	}
	atomic_store(&writer_finished, 1);
	atomic_store(&writer_running, 0);
	return NULL;
}

static int writer_prepare(const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v3(writer_db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK ? 0 : -1;
}

/* ---- the profile's descriptors, closed behind memprof's back ------------------------
 * A program can close memprof's descriptors with a system call memprof does not see
 * (syscall(SYS_close_range, 3, ~0U, 0)), and its next open may then get one of their
 * numbers. Every system call SQLite makes on one of them first makes sure that it is
 * still the file it was (one fstat more a call: py_json's run 18,567), and opens the file
 * again on its number if it was closed; when it cannot (the number or the file is the
 * program's now), the call fails with EBADF without touching it, and recording stops.
 * The file's locks went with the descriptors: once the cycle has committed, the
 * connection is closed and opened again (writer_reconnect). */
#define WRITER_FILES 8
typedef struct writer_file {
	int fd; /* -1: a free entry */
	int flags;
	char *path; /* SQLite's full path of the file (its own name, -wal, -shm) */
} writer_file_t;
static writer_file_t writer_files[WRITER_FILES] = {[0 ... WRITER_FILES - 1] = {-1, 0, NULL}};

static writer_file_t *writer_file(int fd)
{
	for (unsigned i = 0; i < WRITER_FILES; i++)
		if (writer_files[i].fd == fd)
			return &writer_files[i];
	return NULL;
}

static int writer_sqlite_open(const char *path, int flags, mode_t mode)
{
	int fd = -1;
	for (int tries = 0; fd < 0 && tries < 100; tries++) {
		/* (again when the program closed it before it was moved up: the file is there) */
		fd = fds_take(open(path, tries ? flags & ~O_EXCL : flags, mode), path);
		if (fd < 0 && errno != EBADF)
			break;
	}
	if (fd < 0 || !fds_ours(fd))
		return fd;
	writer_file_t *f = writer_file(fd);
	if (!f)
		f = writer_file(-1);
	if (f) {
		size_t n = strlen(path) + 1;
		char *copy = mem_alloc(n);
		if (copy)
			memcpy(copy, path, n);
		mem_free(f->path);
		*f = (writer_file_t){copy ? fd : -1, flags, copy};
	}
	return fd;
}

/* fd may be used: not one of memprof's, or the file it was (opened again on its number
 * if it was closed). Otherwise errno is EBADF. */
static bool writer_fd_ok(int fd)
{
	if (mp_likely(fds_intact(fd)))
		return true;
	writer_file_t *f = writer_file(fd);
	if (f && f->path && fds_reopen(fd, f->path, f->flags)) {
		writer_reopened = true;
		return true;
	}
	if (!writer_abandoned)
		mp_fail("the program closed memprof's file (descriptor %d) with a system call memprof does not see, "
			"and took its number or the file: it cannot be opened again",
			fd);
	writer_abandoned = writer_broken = true;
	sampler_give_up();
	errno = EBADF;
	return false;
}

/* SQLite's waits for a lock (the WAL's, up to about 10 s in all) are not waited once the
 * file is abandoned: its locks fail at once then. */
static int (*writer_real_sleep)(sqlite3_vfs *, int);

static int writer_sqlite_sleep(sqlite3_vfs *vfs, int us)
{
	return writer_abandoned ? us : writer_real_sleep(vfs, us);
}

/* `call` on fd once writer_fd_ok, again if the program closed fd meanwhile (EBADF):
 * its result, or `failed` with errno EBADF. */
#define WRITER_FD_CALL(fd, failed, call)                                                          \
	__extension__({                                                                          \
		__typeof__(call) r_ = (failed);                                                   \
		for (int t_ = 0; t_ < 100 && writer_fd_ok(fd); t_++)                              \
			if ((r_ = (call)) != (failed) || errno != EBADF || !fds_ours(fd))         \
				break;                                                            \
		r_;                                                                              \
	})

static int (*writer_real_close)(int);
static int (*writer_real_fstat)(int, struct stat *);
static int (*writer_real_fcntl)(int, int, ...);
static ssize_t (*writer_real_read)(int, void *, size_t);
static ssize_t (*writer_real_pread)(int, void *, size_t, off_t);
static ssize_t (*writer_real_pread64)(int, void *, size_t, off_t);
static void *(*writer_real_mmap)(void *, size_t, int, int, int, off_t);

static int writer_sqlite_close(int fd)
{
	writer_file_t *f = writer_file(fd);
	if (f) {
		mem_free(f->path);
		*f = (writer_file_t){-1, 0, NULL};
	}
	if (fds_intact(fd))
		return writer_real_close(fd);
	fds_release(fd); /* its number is not memprof's any more: left alone */
	return 0;
}

static int writer_sqlite_fstat(int fd, struct stat *st)
{
	return WRITER_FD_CALL(fd, -1, writer_real_fstat(fd, st));
}

static int writer_sqlite_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *); /* SQLite's calls pass an int or a pointer, or nothing */
	va_end(ap);
	return WRITER_FD_CALL(fd, -1, writer_real_fcntl(fd, cmd, arg));
}

static ssize_t writer_sqlite_read(int fd, void *b, size_t n)
{
	return WRITER_FD_CALL(fd, (ssize_t)-1, writer_real_read(fd, b, n));
}

static ssize_t writer_sqlite_pread(int fd, void *b, size_t n, off_t off)
{
	return WRITER_FD_CALL(fd, (ssize_t)-1, writer_real_pread(fd, b, n, off));
}

static ssize_t writer_sqlite_pread64(int fd, void *b, size_t n, off_t off)
{
	return WRITER_FD_CALL(fd, (ssize_t)-1, writer_real_pread64(fd, b, n, off));
}

static int (*writer_real_fchmod)(int, mode_t);
static int (*writer_real_fchown)(int, uid_t, gid_t);

static int writer_sqlite_fchmod(int fd, mode_t m)
{
	return WRITER_FD_CALL(fd, -1, writer_real_fchmod(fd, m));
}

static int writer_sqlite_fchown(int fd, uid_t u, gid_t g)
{
	return WRITER_FD_CALL(fd, -1, writer_real_fchown(fd, u, g));
}

static void *writer_sqlite_mmap(void *at, size_t n, int prot, int flags, int fd, off_t off)
{
	return fd < 0 ? writer_real_mmap(at, n, prot, flags, fd, off)
		      : WRITER_FD_CALL(fd, MAP_FAILED, writer_real_mmap(at, n, prot, flags, fd, off));
}

/* Before SQLite runs in a cycle: every descriptor of the profile is the file it was, or
 * was opened again (writer_reopened). When one cannot be, recording stops and the
 * connection is abandoned: left as it is, never used again (closing it would close
 * descriptors that are the program's now). */
static void writer_files_ok(void)
{
	for (unsigned i = 0; i < WRITER_FILES && !writer_abandoned; i++)
		if (writer_files[i].fd >= 0)
			writer_fd_ok(writer_files[i].fd);
}

/* The errno of the last failed write or truncation of memprof's files (0: none), kept by
 * wrappers of SQLite's system calls: sqlite3_system_errno reads errno after other calls
 * on SQLite's failure path, where EFBIG (a file size limit) or ENOSPC is often gone. */
static atomic_int writer_io_err;
static ssize_t (*writer_real_write)(int, const void *, size_t);
static ssize_t (*writer_real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*writer_real_pwrite64)(int, const void *, size_t, off_t);
static int (*writer_real_ftruncate)(int, off_t);

int writer_io_errno(void)
{
	return atomic_load(&writer_io_err);
}

static ssize_t writer_io_check(ssize_t r)
{
	if (r < 0)
		atomic_store(&writer_io_err, errno);
	return r;
}

static ssize_t writer_sqlite_write(int fd, const void *b, size_t n)
{
	return writer_io_check(WRITER_FD_CALL(fd, (ssize_t)-1, writer_real_write(fd, b, n)));
}

static ssize_t writer_sqlite_pwrite(int fd, const void *b, size_t n, off_t off)
{
	return writer_io_check(WRITER_FD_CALL(fd, (ssize_t)-1, writer_real_pwrite(fd, b, n, off)));
}

static ssize_t writer_sqlite_pwrite64(int fd, const void *b, size_t n, off_t off)
{
	return writer_io_check(WRITER_FD_CALL(fd, (ssize_t)-1, writer_real_pwrite64(fd, b, n, off)));
}

static int writer_sqlite_ftruncate(int fd, off_t len)
{
	return (int)writer_io_check(WRITER_FD_CALL(fd, -1, writer_real_ftruncate(fd, len)));
}

/* Wraps SQLite's call `name` (real: where its own goes) with `wrapper`, if it has it. */
static void writer_wrap_syscall(sqlite3_vfs *vfs, const char *name, void *real, sqlite3_syscall_ptr wrapper)
{
	sqlite3_syscall_ptr cur = vfs->xGetSystemCall(vfs, name);
	if (!cur)
		return;
	memcpy(real, &cur, sizeof cur);
	vfs->xSetSystemCall(vfs, name, wrapper);
}

/* Opens the connection and prepares its statements; `create`: the file is new, and the
 * schema is made. Says why it fails (and that memprof does not record) at start-up. */
static int writer_connect(const char *path, bool create)
{
	int rc = sqlite3_open_v2(path, &writer_db, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0), NULL);
	if (rc != SQLITE_OK) {
		if (create)
			mp_log("cannot open %s: %s; not recording", path, sqlite3_errstr(rc));
		else
			mp_fail("cannot open the profile again: %s", sqlite3_errstr(rc));
		sqlite3_close(writer_db);
		writer_db = NULL;
		return -EIO;
	}
	/* synchronous=OFF before the switch to WAL, which would otherwise sync the new file
	 * four times (fdatasync: 2-3 ms of the program's start-up here) */
	if (writer_exec("PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL; PRAGMA cache_size=-256;") < 0 ||
	    (create && writer_exec("BEGIN;" MP_SCHEMA_SQL "COMMIT;") < 0)) { /* one commit: fewer pages in the -wal file */
		writer_disconnect(); /* the caller removes the file */
		return -EIO;
	}
	if (writer_prepare("INSERT INTO events(thread,count,first_ts,last_ts,raw_bytes,data) VALUES(?,?,?,?,?,?)",
			   &writer_st_chunk) ||
	    writer_prepare("INSERT INTO stack_nodes(id,parent,frame) VALUES(?,?,?)", &writer_st_node) ||
	    writer_prepare("INSERT INTO pycode(id,filename,name,qualname,firstlineno,linetable) VALUES(?,?,?,?,?,?)",
			   &writer_st_code) ||
	    writer_prepare("INSERT INTO modules(path,build_id,base,lo,hi,ts,gen) VALUES(?,?,?,?,?,?,?)", &writer_st_module) ||
	    writer_prepare("INSERT INTO samples(ts,rss) VALUES(?,?)", &writer_st_sample) ||
	    writer_prepare("INSERT OR REPLACE INTO meta(key,value) VALUES(?,?)", &writer_st_meta) ||
	    writer_prepare("INSERT OR REPLACE INTO threads(id,tid,name) VALUES(?,?,?)", &writer_st_thread) ||
	    writer_prepare("INSERT OR REPLACE INTO sources(filename,size,mtime_ns) VALUES(?,?,?)", &writer_st_source) ||
	    writer_prepare("BEGIN", &writer_st_begin) || writer_prepare("COMMIT", &writer_st_commit)) {
		if (create)
			mp_log("cannot prepare statements: %s; not recording", sqlite3_errmsg(writer_db));
		else
			mp_fail("cannot open the profile again: %s", sqlite3_errmsg(writer_db));
		writer_disconnect();
		return -EIO;
	}
	return 0;
}

/* After a descriptor of the profile was opened again (writer_reopened) and the cycle
 * committed: the connection again, with its locks, if its name is still the file. */
static void writer_reconnect(void)
{
	writer_reopened = false;
	char path[4096];
	const char *name = sqlite3_db_filename(writer_db, "main");
	int n = name ? snprintf(path, sizeof path, "%s", name) : -1;
	writer_file_t *f = NULL;
	for (unsigned i = 0; name && i < WRITER_FILES; i++)
		if (writer_files[i].fd >= 0 && writer_files[i].path && !strcmp(writer_files[i].path, name))
			f = &writer_files[i];
	if (n <= 0 || (size_t)n >= sizeof path || !f || !fds_named(f->fd, path))
		return; /* renamed or removed: the connection goes on without its locks */
	writer_disconnect();
	writer_single_file = false; /* the new connection is in WAL mode */
	writer_connect(path, false);
}

int writer_start(const char *path)
{
	static bool sqlite_configured;
	if (!sqlite_configured) {
		static const sqlite3_mem_methods mm = {writer_sq_malloc, writer_sq_free, writer_sq_realloc,
						       writer_sq_size, writer_sq_roundup, writer_sq_init,
						       writer_sq_shutdown, NULL};
		sqlite3_config(SQLITE_CONFIG_MALLOC, &mm);
		/* the file, its -wal and -shm on memprof's own descriptor numbers (fds.h) */
		sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);
		if (vfs && vfs->iVersion >= 3 && vfs->xSetSystemCall && vfs->xGetSystemCall) {
			vfs->xSetSystemCall(vfs, "open", (sqlite3_syscall_ptr)writer_sqlite_open);
			writer_wrap_syscall(vfs, "write", &writer_real_write, (sqlite3_syscall_ptr)writer_sqlite_write);
			writer_wrap_syscall(vfs, "pwrite", &writer_real_pwrite, (sqlite3_syscall_ptr)writer_sqlite_pwrite);
			writer_wrap_syscall(vfs, "pwrite64", &writer_real_pwrite64,
					    (sqlite3_syscall_ptr)writer_sqlite_pwrite64);
			writer_wrap_syscall(vfs, "ftruncate", &writer_real_ftruncate,
					    (sqlite3_syscall_ptr)writer_sqlite_ftruncate);
			writer_wrap_syscall(vfs, "close", &writer_real_close, (sqlite3_syscall_ptr)writer_sqlite_close);
			writer_wrap_syscall(vfs, "fstat", &writer_real_fstat, (sqlite3_syscall_ptr)writer_sqlite_fstat);
			writer_wrap_syscall(vfs, "fcntl", &writer_real_fcntl, (sqlite3_syscall_ptr)writer_sqlite_fcntl);
			writer_wrap_syscall(vfs, "read", &writer_real_read, (sqlite3_syscall_ptr)writer_sqlite_read);
			writer_wrap_syscall(vfs, "pread", &writer_real_pread, (sqlite3_syscall_ptr)writer_sqlite_pread);
			writer_wrap_syscall(vfs, "pread64", &writer_real_pread64, (sqlite3_syscall_ptr)writer_sqlite_pread64);
			writer_wrap_syscall(vfs, "mmap", &writer_real_mmap, (sqlite3_syscall_ptr)writer_sqlite_mmap);
			writer_wrap_syscall(vfs, "fchmod", &writer_real_fchmod, (sqlite3_syscall_ptr)writer_sqlite_fchmod);
			writer_wrap_syscall(vfs, "fchown", &writer_real_fchown, (sqlite3_syscall_ptr)writer_sqlite_fchown);
			writer_real_sleep = vfs->xSleep;
			vfs->xSleep = writer_sqlite_sleep;
		}
		sqlite_configured = true;
	}
	if (writer_zstd_open() < 0) {
		mp_log("cannot allocate the compressor; not recording");
		return -ENOMEM;
	}
	int rc = writer_connect(path, true);
	if (rc < 0)
		return rc;
	const char *zfail = getenv("MEMPROF_TEST_FAIL_COMPRESS");
	writer_test_zfail = zfail ? strtol(zfail, NULL, 10) : 0;
	writer_begin();
	writer_meta_u64("schema_version", MP_SCHEMA_VERSION);
	writer_set_meta("memprof_version", MP_VERSION);
	writer_set_meta("status", "running");
	writer_meta_u64("dropped_events", 0);
	return 0;
}

/* Starts the thread; the caller has written its meta rows. */
int writer_run(void);
int writer_run(void)
{
	if (writer_txn(writer_st_commit, "COMMIT") < 0) { /* said; the caller removes the file */
		writer_disconnect();
		return -EIO;
	}
	writer_in_txn = false;
	writer_last_commit_ns = clock_mono_ns();
	writer_committed(clock_now());
	sem_init(&writer_sem, 0, 0);
	atomic_store(&writer_stop, 0);
	atomic_store(&writer_finished, 0);
	writer_pid = getpid();
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	atomic_store(&writer_running, 1);
	int rc = pthread_create(&writer_thread, NULL, writer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		atomic_store(&writer_running, 0);
		return -rc;
	}
	return 0;
}

void writer_wake(void)
{
	if (atomic_load_explicit(&writer_running, memory_order_relaxed))
		sem_post(&writer_sem);
}

bool writer_alive(void)
{
	return atomic_load_explicit(&writer_running, memory_order_relaxed) && !atomic_load(&writer_finished);
}

static void writer_wait_finished(unsigned timeout_ms)
{
	for (unsigned waited = 0; !atomic_load(&writer_finished) && waited < timeout_ms * 10; waited++) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
}

/* False in a process that shares memory with the writer's owner without owning it: a
 * vfork child (Python's subprocess, posix_spawn-like launchers), whose hooks must leave
 * the parent's file and writer alone. */
static bool writer_owned(void)
{
	return getpid() == writer_pid;
}

bool writer_records_here(void)
{
	return writer_owned() && writer_alive();
}

/* `memprof run` (MEMPROF_RUN_ANNOUNCE): the root process names its file when it ends. */
static char writer_announce_path[4096];
static bool writer_announce_at_exec;

void writer_announce(const char *path, bool at_exec)
{
	snprintf(writer_announce_path, sizeof writer_announce_path, "%s", path);
	writer_announce_at_exec = at_exec;
}

/* Names the file, once everything is in it: at the end (`done`: the writer finished),
 * or at an exec that leaves the file to this image (writer_announce's at_exec). */
static void writer_said(bool done)
{
	if (writer_announce_path[0] && done)
		mp_log("profile written to %s (memprof report %s)", writer_announce_path, writer_announce_path);
}

void writer_final_flush(void)
{
	if (!writer_owned() || !atomic_load(&writer_running))
		return;
	int saved = errno;
	mp_guard_enter();
	sampler_stop();
	atomic_store(&mp_recording, 0);
	atomic_store(&writer_stop, 1);
	sem_post(&writer_sem);
	if (!pthread_equal(pthread_self(), writer_thread))
		writer_wait_finished(30000);
	writer_said(atomic_load(&writer_finished));
	if (unwind_check)
		mp_log("unwinder check: %lu stacks, %lu answered by memprof's unwinder (%lu unwound, the rest "
		       "from its cache), %lu differed",
		       atomic_load(&unwind_checked), atomic_load(&unwind_answered), atomic_load(&unwind_filled),
		       atomic_load(&unwind_differed));
	mp_unguard();
	errno = saved;
}

void writer_sync(unsigned timeout_ms)
{
	if (!writer_owned() || !writer_alive() || mp_guard)
		return;
	int saved = errno;
	mp_guard_enter();
	unsigned req = atomic_fetch_add(&writer_sync_req, 1) + 1;
	sem_post(&writer_sem);
	for (unsigned waited = 0; (int)(atomic_load(&writer_sync_done) - req) < 0 && writer_alive() &&
				  waited < timeout_ms * 10;
	     waited++) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	mp_unguard();
	errno = saved;
}

/* A vfork child runs the exec hooks too: were it to mark the file complete, the
 * parent's file would say so (and go on as one file) while the parent runs. */
void writer_exec_begin(void)
{
	if (!writer_owned())
		return;
	atomic_store(&writer_status_complete, 1);
	writer_sync(5000);
	writer_said(writer_announce_at_exec);
}

void writer_exec_failed(void)
{
	if (!writer_owned())
		return;
	atomic_store(&writer_status_complete, 0);
}

void writer_emergency_flush(unsigned timeout_ms)
{
	if (!writer_owned() || !atomic_load(&writer_running))
		return;
	mp_guard_enter();
	atomic_store(&mp_recording, 0);
	atomic_store(&writer_stop, 1);
	sem_post(&writer_sem);
	if (!pthread_equal(pthread_self(), writer_thread))
		writer_wait_finished(timeout_ms);
	writer_said(atomic_load(&writer_finished));
	mp_unguard();
}

void writer_before_dlclose(void)
{
	if (atomic_load_explicit(&mp_recording, memory_order_relaxed))
		modules_scan();
}

void writer_fork_prepare(void)
{
	pthread_mutex_lock(&writer_lock);
	pthread_mutex_lock(&writer_sample_lock);
}

void writer_fork_parent(void)
{
	pthread_mutex_unlock(&writer_sample_lock);
	pthread_mutex_unlock(&writer_lock);
}

void writer_fork_child(void)
{
	pthread_mutex_init(&writer_sample_lock, NULL);
	pthread_mutex_init(&writer_lock, NULL);
	/* The parent's connection and statements belong to the parent: leave them (their
	 * descriptors are close-on-exec) and never touch its file. */
	writer_db = NULL;
	writer_forget_statements(false);
	for (unsigned i = 0; i < WRITER_FILES; i++)
		writer_files[i].fd = -1; /* the parent's (their paths are freed when reused) */
	writer_reopened = writer_abandoned = false;
	writer_in_txn = false;
	writer_broken = false;
	writer_data_end = 0;
	writer_samples = NULL;
	writer_samples_n = writer_samples_cap = 0;
	writer_last_ticks = 0;
	writer_raw_total = 0; /* the parent's encoder buffers are left with its thread states */
	writer_zstd_drop();   /* and its open frame */
	atomic_store(&writer_running, 0);
	atomic_store(&writer_finished, 0);
	writer_pid = 0;
	writer_announce_path[0] = 0; /* `memprof run` names the root's file; its children say nothing */
	writer_sources_seen = (u64set_t){0}; /* the child's file has none of the parent's rows */
	hotcode_fork_child();
}
