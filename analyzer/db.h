/* The profile database, read-only view: opening and validating a memprof file and
 * loading its small tables (meta, stack tree, code objects, modules, samples) into
 * memory. The event chunks stay in SQLite and are streamed by stream.c. */
#ifndef MEMPROF_ANALYZER_DB_H
#define MEMPROF_ANALYZER_DB_H

#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct db_node {
	uint64_t frame;  /* mp_frame (format.h) */
	uint32_t parent; /* 0 = root */
	bool present;    /* false for ids without a row (0 and gaps) */
} db_node_t;

typedef struct db_pycode {
	int64_t id;
	char *filename; /* lexically normalized (paths.h) */
	char *name;
	char *qualname;
	int firstlineno;
	uint8_t *linetable;
	size_t linetable_len;
} db_pycode_t;

/* A Python source file as it was when the program ran (table sources; none in older files). */
typedef struct db_source {
	char *filename; /* lexically normalized, as pycode's */
	int64_t size, mtime_ns;
} db_source_t;

typedef struct db_module {
	char *path;
	char *build_id;
	uint64_t base, lo, hi;
	uint64_t gen; /* module generation when first seen (format.h) */
} db_module_t;

typedef struct db_sample {
	uint64_t ts;
	uint64_t rss;
} db_sample_t;

typedef struct db_meta {
	char *key;
	char *value;
} db_meta_t;

typedef struct db {
	sqlite3 *sql;
	const char *path;
	char err[512]; /* the reason of the last failure, for "memprof: FILE: reason" */
	bool wal_alone; /* a file in WAL mode with no -wal file beside it (a copy made while
			 * its program ran: the data is in the -wal file it was copied from) */
	bool had_wal, had_shm; /* the -wal and -shm files were there before we opened the file:
				* the ones SQLite makes for us are removed when we close it */

	db_meta_t *meta;
	size_t n_meta;
	/* decoded meta */
	const char *command;
	int64_t pid;
	double start_time_unix;
	uint64_t clock_start;
	bool has_clock_start; /* else the pass sets clock_start to the first event */
	double ticks_per_sec;
	double sample_bytes; /* meta sample_bytes: 0 = every allocation recorded */
	uint64_t dropped_events;
	uint64_t queued_bytes_peak; /* the most the event blocks queued for the writer held */
	bool has_queued_bytes_peak; /* files from before it was recorded do not have it */
	const char *stopped_reason; /* recording stopped early (memory short, ...): why, or NULL */
	uint64_t stopped_ticks;     /*   and when */
	uint64_t last_ticks;
	const char *status;
	const char *cwd; /* the program's working directory (meta cwd), NULL if unknown */
	bool py_bare_names; /* CPython before 3.11: a code object's qualname is its bare name */
	long schema_version;

	db_node_t *nodes; /* indexed by id, n_nodes = max id + 1 */
	uint32_t n_nodes;
	/* when the file has spliced chains (splice.h): the node an event's stack id names
	 * (UINT32_MAX: none), for ids below n_stack_remap; else NULL and ids are nodes */
	uint32_t *stack_remap;
	uint32_t n_stack_remap;
	db_pycode_t *pycode; /* sorted by id */
	size_t n_pycode;
	db_source_t *sources;
	size_t n_sources;
	db_module_t *modules; /* in id order */
	size_t n_modules;
	db_sample_t *samples; /* sorted by ts */
	size_t n_samples;
	uint64_t threads;
} db_t;

/* Opens and validates `path` and loads the small tables. Returns 0, or -1 with db->err
 * set (db must still be passed to db_close). Never modifies the file. */
int db_open(db_t *db, const char *path);
void db_close(db_t *db);

/* Meta value for key, or NULL. */
const char *db_meta_get(const db_t *db, const char *key);
const db_pycode_t *db_pycode_find(const db_t *db, int64_t id);
/* Seconds since program start for a clock value. */
double db_seconds(const db_t *db, uint64_t ts);
/* Sets db->err from a printf format; returns -1. */
int db_fail(db_t *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* db_fail's formatting into any buffer (one printable line); returns -1. */
int db_failv(char *err, size_t size, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

#endif
