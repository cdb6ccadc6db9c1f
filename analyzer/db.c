/* db: the one place that talks SQL for the small tables.
 *
 * Opening is defensive: the file is checked to exist, be a regular non-empty file and
 * carry the SQLite header before SQLite sees it, so every kind of bad input ends in one
 * clear reason instead of a crash. The connection is read-write when the OS allows it
 * (so a WAL left by a killed process can be recovered in memory) but query_only and
 * without the checkpoint-on-close, so the file is never modified.
 */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memprof/format.h"
#include "memprof/schema.h"
#include "paths.h"
#include "splice.h"

/* Node ids are handed out densely by the capture side; anything far sparser than the
 * row count is damage, and would make the id-indexed arrays absurdly large. */
#define DB_MAX_NODE_SLACK (1u << 20)

int db_failv(char *err, size_t size, const char *fmt, va_list ap)
{
	vsnprintf(err, size, fmt, ap);
	/* The reason may quote bytes from a damaged file: keep it one printable line. */
	for (char *c = err; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	return -1;
}

int db_fail(db_t *db, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	db_failv(db->err, sizeof db->err, fmt, ap);
	va_end(ap);
	return -1;
}

static char *db_strdup(const unsigned char *s)
{
	return strdup(s ? (const char *)s : "");
}

/* Room for one more row in a loader's array: *items (of *n rows, *cap allocated, `size`
 * bytes each) grown to twice its size, `first` rows at first. 0, or -1 with the query
 * finalized and db->err set. */
static int db_room(db_t *db, sqlite3_stmt *st, void *items, size_t n, size_t *cap, size_t first, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? 2 * *cap : first;
	void *grown = realloc(*(void **)items, ncap * size);
	if (!grown) {
		sqlite3_finalize(st);
		return db_fail(db, "out of memory");
	}
	*(void **)items = grown;
	*cap = ncap;
	return 0;
}

/* A prepare/step failure: names the table the query needed when it is missing. */
static int db_sql_fail(db_t *db, const char *what)
{
	int code = sqlite3_errcode(db->sql);
	const char *msg = sqlite3_errmsg(db->sql);
	if (code == SQLITE_NOTADB)
		return db_fail(db, "not a SQLite database");
	if (strstr(msg, "no such table") && db->wal_alone)
		return db_fail(db, "no tables yet: a profile still being written keeps them in its -wal file; "
				   "copy that file too, or read the profile once its program has ended");
	if (strstr(msg, "no such table") || strstr(msg, "no such column"))
		return db_fail(db, "not a memprof database (%s)", msg);
	if (code == SQLITE_CORRUPT)
		return db_fail(db, "corrupt or truncated database (%s: %s)", what, msg);
	return db_fail(db, "cannot read %s: %s", what, msg);
}

static int db_prepare(db_t *db, const char *sql, const char *what, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(db->sql, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return db_sql_fail(db, what);
	}
	return 0;
}

/* Finishes a statement loop: SQLITE_DONE is success, anything else a failure. */
static int db_finish(db_t *db, sqlite3_stmt *st, int rc, const char *what)
{
	int ret = rc == SQLITE_DONE ? 0 : db_sql_fail(db, what);
	sqlite3_finalize(st);
	return ret;
}

const char *db_meta_get(const db_t *db, const char *key)
{
	for (size_t i = 0; i < db->n_meta; i++)
		if (strcmp(db->meta[i].key, key) == 0)
			return db->meta[i].value;
	return NULL;
}

/* Whether PATH followed by SUFFIX (SQLite's -wal or -shm file) exists; a name too long
 * to build counts as there, so that it is never removed. */
static bool db_side_exists(const char *path, const char *suffix)
{
	char side[PATH_MAX];
	struct stat st;
	return snprintf(side, sizeof side, "%s%s", path, suffix) >= (int)sizeof side || stat(side, &st) == 0;
}

/* Opening a file in WAL mode makes SQLite create its -shm file, and its -wal file when
 * there is none (a copy of a profile made while its program ran): remove the ones it made,
 * the -wal only when empty, so that reading a file leaves its directory as it was. */
static void db_remove_side_files(const db_t *db)
{
	char side[PATH_MAX];
	struct stat st;
	if (!db->had_wal && snprintf(side, sizeof side, "%s-wal", db->path) < (int)sizeof side &&
	    stat(side, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
		unlink(side);
	/* a -wal that came meanwhile (not ours: it is not empty) is a program writing the file */
	if (!db->had_shm && snprintf(side, sizeof side, "%s-shm", db->path) < (int)sizeof side &&
	    (db->had_wal || !db_side_exists(db->path, "-wal")))
		unlink(side);
}

static int db_check_file(db_t *db, const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return db_fail(db, "%s", strerror(errno));
	if (S_ISDIR(st.st_mode))
		return db_fail(db, "is a directory");
	if (!S_ISREG(st.st_mode))
		return db_fail(db, "not a regular file");
	if (st.st_size == 0)
		return db_fail(db, "empty file (not a memprof database)");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return db_fail(db, "%s", strerror(errno));
	unsigned char head[20];
	ssize_t n = read(fd, head, sizeof head);
	close(fd);
	if (n != (ssize_t)sizeof head || memcmp(head, "SQLite format 3", 16) != 0)
		return db_fail(db, "not a SQLite database");
	db->had_wal = db_side_exists(path, "-wal");
	db->had_shm = db_side_exists(path, "-shm");
	/* file format version numbers 2: WAL mode */
	db->wal_alone = head[18] == 2 && head[19] == 2 && !db->had_wal;
	return 0;
}

static int db_meta_damaged(db_t *db, const char *key, const char *v)
{
	return db_fail(db, "damaged file: meta %s is '%.24s', not a number memprof writes", key, v);
}

/* meta KEY as an unsigned integer up to max, if there (*present says so) */
static int db_meta_u64(db_t *db, const char *key, uint64_t max, uint64_t *out, bool *present)
{
	const char *v = db_meta_get(db, key);
	if (present)
		*present = v != NULL;
	if (!v)
		return 0;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (!*v || *end || errno || *v == '-' || x > max)
		return db_meta_damaged(db, key, v);
	*out = x;
	return 0;
}

/* meta KEY as a finite number in [lo, hi], if there */
static int db_meta_real(db_t *db, const char *key, double lo, double hi, double *out, bool *present)
{
	const char *v = db_meta_get(db, key);
	if (present)
		*present = v != NULL;
	if (!v)
		return 0;
	char *end;
	double x = strtod(v, &end);
	if (!*v || *end || !(x >= lo && x <= hi)) /* also NaN */
		return db_meta_damaged(db, key, v);
	*out = x;
	return 0;
}

static int db_load_meta(db_t *db)
{
	sqlite3_stmt *st;
	if (db_prepare(db, "SELECT key, value FROM meta", "meta", &st))
		return -1;
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (db_room(db, st, &db->meta, db->n_meta, &cap, 32, sizeof *db->meta))
			return -1;
		db->meta[db->n_meta].key = db_strdup(sqlite3_column_text(st, 0));
		db->meta[db->n_meta].value = db_strdup(sqlite3_column_text(st, 1));
		db->n_meta++;
	}
	if (db_finish(db, st, rc, "meta"))
		return -1;

	const char *v = db_meta_get(db, "schema_version");
	if (!v)
		return db_fail(db, "not a memprof database (no schema_version in meta)");
	char *end;
	long ver = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || ver < MP_SCHEMA_VERSION_OLDEST || ver > MP_SCHEMA_VERSION)
		return db_fail(db, "unsupported schema version '%.20s' (this memprof reads versions %d to %d)", v,
			       MP_SCHEMA_VERSION_OLDEST, MP_SCHEMA_VERSION);

	db->schema_version = ver;
	db->command = db_meta_get(db, "command");
	if (!db->command)
		db->command = "";
	db->cwd = db_meta_get(db, "cwd");
	const char *pv = db_meta_get(db, "python_version");
	db->py_bare_names = pv && strncmp(pv, "3.", 2) == 0 && atoi(pv + 2) < 11;
	if (db->cwd && db->cwd[0] != '/')
		db->cwd = NULL;
	db->status = db_meta_get(db, "status");
	if (!db->status)
		db->status = "unknown";
	/* numbers memprof wrote: anything else (text, negative, inf, nan, out of range) is a
	 * damaged file, not figures to compute with */
	double sb = 0;
	uint64_t pid = 0;
	if (db_meta_u64(db, "pid", INT32_MAX, &pid, NULL) ||
	    db_meta_real(db, "start_time_unix", 0, 1e11, &db->start_time_unix, NULL) ||
	    db_meta_u64(db, "clock_start_ticks", INT64_MAX, &db->clock_start, &db->has_clock_start) ||
	    db_meta_real(db, "clock_ticks_per_sec", 1, 1e13, &db->ticks_per_sec, NULL) ||
	    db_meta_u64(db, "dropped_events", INT64_MAX, &db->dropped_events, NULL) ||
	    db_meta_u64(db, "queued_bytes_peak", INT64_MAX, &db->queued_bytes_peak, &db->has_queued_bytes_peak) ||
	    db_meta_u64(db, "stopped_ticks", INT64_MAX, &db->stopped_ticks, NULL) ||
	    db_meta_u64(db, "last_ticks", INT64_MAX, &db->last_ticks, NULL) ||
	    db_meta_real(db, "sample_bytes", 0, 1ull << 53, &sb, NULL))
		return -1;
	if (!db_meta_get(db, "clock_ticks_per_sec"))
		db->ticks_per_sec = 1e9;
	db->sample_bytes = sb;
	db->pid = (int64_t)pid;
	db->stopped_reason = db_meta_get(db, "stopped_reason");
	return 0;
}

static int db_load_nodes(db_t *db)
{
	sqlite3_stmt *st;
	if (db_prepare(db, "SELECT count(*), coalesce(max(id), 0), coalesce(min(id), 1) FROM stack_nodes",
		       "stack_nodes", &st))
		return -1;
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return db_finish(db, st, rc, "stack_nodes");
	int64_t count = sqlite3_column_int64(st, 0);
	int64_t max = sqlite3_column_int64(st, 1);
	int64_t min = sqlite3_column_int64(st, 2);
	sqlite3_finalize(st);
	if (min < 1 || max > (int64_t)UINT32_MAX - 1 || max > 16 * count + DB_MAX_NODE_SLACK)
		return db_fail(db, "corrupt stack_nodes table (ids %lld..%lld for %lld rows)",
			       (long long)min, (long long)max, (long long)count);
	db->n_nodes = (uint32_t)max + 1;
	db->nodes = calloc(db->n_nodes, sizeof *db->nodes);
	if (!db->nodes)
		return db_fail(db, "out of memory");

	if (db_prepare(db, "SELECT id, parent, frame FROM stack_nodes", "stack_nodes", &st))
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		int64_t parent = sqlite3_column_int64(st, 1);
		if (parent < 0 || parent >= id) {
			sqlite3_finalize(st);
			return db_fail(db, "corrupt stack_nodes table (node %lld has parent %lld)",
				       (long long)id, (long long)parent);
		}
		db_node_t *n = &db->nodes[id];
		n->parent = (uint32_t)parent;
		n->frame = (uint64_t)sqlite3_column_int64(st, 2);
		n->present = true;
	}
	if (db_finish(db, st, rc, "stack_nodes"))
		return -1;
	return db->schema_version >= 4 ? splice_expand(db) : 0; /* version 3 has no splices */
}

static int db_load_pycode(db_t *db)
{
	sqlite3_stmt *st;
	if (db_prepare(db,
		       "SELECT id, filename, name, qualname, firstlineno, linetable FROM pycode ORDER BY id",
		       "pycode", &st))
		return -1;
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (db_room(db, st, &db->pycode, db->n_pycode, &cap, 256, sizeof *db->pycode))
			return -1;
		db_pycode_t *c = &db->pycode[db->n_pycode++];
		c->id = sqlite3_column_int64(st, 0);
		c->filename = paths_normalize(db_strdup(sqlite3_column_text(st, 1)));
		c->name = db_strdup(sqlite3_column_text(st, 2));
		c->qualname = db_strdup(sqlite3_column_text(st, 3));
		c->firstlineno = sqlite3_column_int(st, 4);
		const void *blob = sqlite3_column_blob(st, 5);
		c->linetable_len = (size_t)sqlite3_column_bytes(st, 5);
		c->linetable = malloc(c->linetable_len + 1);
		if (c->linetable_len)
			memcpy(c->linetable, blob, c->linetable_len);
	}
	return db_finish(db, st, rc, "pycode");
}

/* The sources table, when the file has one (since session 17). */
static int db_load_sources(db_t *db)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db->sql, "SELECT filename, size, mtime_ns FROM sources", -1, &st, NULL) != SQLITE_OK)
		return 0; /* an older file */
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (db_room(db, st, &db->sources, db->n_sources, &cap, 64, sizeof *db->sources))
			return -1;
		db_source_t *s = &db->sources[db->n_sources++];
		s->filename = paths_normalize(db_strdup(sqlite3_column_text(st, 0)));
		s->size = sqlite3_column_int64(st, 1);
		s->mtime_ns = sqlite3_column_int64(st, 2);
	}
	return db_finish(db, st, rc, "sources");
}

static int db_load_modules(db_t *db)
{
	sqlite3_stmt *st;
	if (db_prepare(db, "SELECT path, build_id, base, lo, hi, gen FROM modules ORDER BY id", "modules", &st))
		return -1;
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (db_room(db, st, &db->modules, db->n_modules, &cap, 64, sizeof *db->modules))
			return -1;
		db_module_t *m = &db->modules[db->n_modules++];
		m->path = db_strdup(sqlite3_column_text(st, 0));
		m->build_id = db_strdup(sqlite3_column_text(st, 1));
		m->base = (uint64_t)sqlite3_column_int64(st, 2);
		m->lo = (uint64_t)sqlite3_column_int64(st, 3);
		m->hi = (uint64_t)sqlite3_column_int64(st, 4);
		m->gen = (uint64_t)sqlite3_column_int64(st, 5);
	}
	return db_finish(db, st, rc, "modules");
}

static int db_load_samples(db_t *db)
{
	sqlite3_stmt *st;
	if (db_prepare(db, "SELECT ts, rss FROM samples ORDER BY ts", "samples", &st))
		return -1;
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* (the types before the values: reading a value may convert it) */
		bool whole = sqlite3_column_type(st, 0) == SQLITE_INTEGER && sqlite3_column_type(st, 1) == SQLITE_INTEGER;
		int64_t ts = sqlite3_column_int64(st, 0), rss = sqlite3_column_int64(st, 1);
		if (!whole || ts < 0 || rss < 0) {
			sqlite3_finalize(st);
			return db_fail(db, "damaged file: a sample's time or RSS is negative or not a whole number");
		}
		if (db_room(db, st, &db->samples, db->n_samples, &cap, 1024, sizeof *db->samples))
			return -1;
		db_sample_t *s = &db->samples[db->n_samples++];
		s->ts = (uint64_t)ts;
		s->rss = (uint64_t)rss;
	}
	return db_finish(db, st, rc, "samples");
}

/* The threads: distinct system thread ids. A thread that allocates after memprof saw it
 * end (in another library's thread-exit destructor) gets a second state, row and id,
 * with the same tid; events of ids with no row count one each. */
static int db_load_threads(db_t *db)
{
	sqlite3_stmt *st;
	if (db_prepare(db,
		       "SELECT (SELECT count(DISTINCT tid) FROM threads) + (SELECT count(*) FROM (SELECT DISTINCT thread "
		       "FROM events WHERE thread NOT IN (SELECT id FROM threads)))",
		       "threads", &st))
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		db->threads = (uint64_t)sqlite3_column_int64(st, 0);
		rc = SQLITE_DONE;
	}
	return db_finish(db, st, rc, "threads");
}

int db_open(db_t *db, const char *path)
{
	memset(db, 0, sizeof *db);
	db->path = path;
	if (db_check_file(db, path))
		return -1;
	/* A relative name as ./NAME: SQLite takes `file:...` for a URI (its build here
	 * enables them) and `:memory:` for no file at all, whatever is on disk. */
	size_t n = strlen(path);
	char *name = malloc(n + 3);
	if (!name)
		return db_fail(db, "out of memory");
	snprintf(name, n + 3, "%s%s", path[0] == '/' ? "" : "./", path);
	/* (serialized: the events are read on a thread of their own, stream.c) */
	int rc = sqlite3_open_v2(name, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close(db->sql);
		db->sql = NULL;
		rc = sqlite3_open_v2(name, &db->sql, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL);
	}
	free(name);
	if (rc != SQLITE_OK)
		return db_fail(db, "cannot open: %s", db->sql ? sqlite3_errmsg(db->sql) : "out of memory");
	/* Leave the file as it was: no checkpoint into it when we close. */
	sqlite3_db_config(db->sql, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	sqlite3_busy_timeout(db->sql, 5000);
	sqlite3_exec(db->sql, "PRAGMA query_only=1", NULL, NULL, NULL);

	if (db_load_meta(db) || db_load_nodes(db) || db_load_pycode(db) || db_load_sources(db) || db_load_modules(db) ||
	    db_load_samples(db) || db_load_threads(db))
		return -1;
	return 0;
}

void db_close(db_t *db)
{
	if (db->sql) {
		sqlite3_close(db->sql);
		db_remove_side_files(db);
	}
	for (size_t i = 0; i < db->n_meta; i++) {
		free(db->meta[i].key);
		free(db->meta[i].value);
	}
	free(db->meta);
	for (size_t i = 0; i < db->n_pycode; i++) {
		free(db->pycode[i].filename);
		free(db->pycode[i].name);
		free(db->pycode[i].qualname);
		free(db->pycode[i].linetable);
	}
	free(db->pycode);
	for (size_t i = 0; i < db->n_sources; i++)
		free(db->sources[i].filename);
	free(db->sources);
	for (size_t i = 0; i < db->n_modules; i++) {
		free(db->modules[i].path);
		free(db->modules[i].build_id);
	}
	free(db->modules);
	free(db->nodes);
	free(db->stack_remap);
	free(db->samples);
	memset(db, 0, sizeof *db);
}

const db_pycode_t *db_pycode_find(const db_t *db, int64_t id)
{
	size_t lo = 0, hi = db->n_pycode;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (db->pycode[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < db->n_pycode && db->pycode[lo].id == id ? &db->pycode[lo] : NULL;
}

double db_seconds(const db_t *db, uint64_t ts)
{
	return (double)(int64_t)(ts - db->clock_start) / db->ticks_per_sec;
}
