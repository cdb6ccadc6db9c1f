/* memprof database schema: one SQLite file per profiled process.
 *
 * Written by the preload library's writer thread only; read by the analyzer, which
 * refuses files whose meta.schema_version it does not know. Times are clock ticks
 * (meta clock_start_ticks, clock_ticks_per_sec convert them to seconds since start).
 */
#ifndef MEMPROF_SCHEMA_H
#define MEMPROF_SCHEMA_H

#define MP_SCHEMA_VERSION 5
/* The oldest version the analyzer still reads: 4 added spliced native chains
 * (format.h, MP_FRAME_CHAINS), which version 3 files do not have; 5 added mapped memory
 * (allocators MP_AL_MMAP, MP_AL_MREMAP, MP_AL_MMAP_REST), which earlier analyzers would
 * call damaged. */
#define MP_SCHEMA_VERSION_OLDEST 3
#define MP_VERSION "0.1.0"

/* meta keys: schema_version, memprof_version, pid, ppid, command (shell-quoted), argv
 * (JSON array), exe, cwd, start_time_unix (seconds, float), clock ("tsc" or "monotonic"),
 * clock_start_ticks, clock_ticks_per_sec, python_version (Python processes), native_stacks,
 * max_depth, sample_interval_ms, dropped_events, queued_bytes_peak (the most memory the
 * blocks of events waiting for the writer held at once), last_ticks (the newest event or sample
 * written), status ("running", then "complete" after a clean shutdown), and when an
 * internal failure (memory short, the file unwritable) stopped recording early:
 * stopped_reason (text) and stopped_ticks (when). */
#define MP_SCHEMA_SQL                                                                      \
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;"    \
	"CREATE TABLE IF NOT EXISTS threads(id INTEGER PRIMARY KEY, tid INTEGER, name TEXT);" \
	"CREATE TABLE IF NOT EXISTS modules(id INTEGER PRIMARY KEY, path TEXT, build_id TEXT," \
	" base INTEGER, lo INTEGER, hi INTEGER, ts INTEGER, gen INTEGER);"                     \
	"CREATE TABLE IF NOT EXISTS pycode(id INTEGER PRIMARY KEY, filename TEXT, name TEXT,"  \
	" qualname TEXT, firstlineno INTEGER, linetable BLOB);"                                \
	"CREATE TABLE IF NOT EXISTS stack_nodes(id INTEGER PRIMARY KEY, parent INTEGER,"       \
	" frame INTEGER);"                                                                     \
	"CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, thread INTEGER,"            \
	" count INTEGER, first_ts INTEGER, last_ts INTEGER, raw_bytes INTEGER, data BLOB);"    \
	"CREATE TABLE IF NOT EXISTS samples(ts INTEGER, rss INTEGER);"                         \
	"CREATE TABLE IF NOT EXISTS sources(filename TEXT PRIMARY KEY, size INTEGER,"          \
	" mtime_ns INTEGER) WITHOUT ROWID;"

/* Table notes.
 * modules: one row per loaded object seen (load address `base` = ELF load bias; lo..hi the
 *   span of its PT_LOAD segments; build_id in hex; ts when first seen; gen the module
 *   generation current then, see format.h). An object unloaded and loaded again gets a
 *   new row. A native frame (ip, generation g) belongs to the row whose [lo, hi) holds ip
 *   and whose gen is the latest at or before g (mp_frame_gen_distance, modulo 2^15: a row
 *   first seen after g is only taken when no other holds ip); of rows with the same gen,
 *   the one written last.
 * pycode: a Python code object, captured once when first seen: co_filename, co_name,
 *   co_qualname, co_firstlineno and co_linetable (CPython 3.11 location table format).
 *   From CPython 3.10: qualname is co_name (3.10 has no co_qualname), and the line table
 *   is 3.10's co_linetable written in 3.11's format (preload/pyline_convert.c).
 * stack_nodes: the interned stack tree. frame is a mp_frame (format.h) stored as a signed
 *   64-bit integer; parent 0 is the root (the empty stack, which has no row). Frames
 *   of a stack that was cut short hang from a node whose frame is MP_FRAME_TRUNCATED:
 *   under the root (the outer frames were not recorded), or in mixed mode under the
 *   innermost Python frame (native frames between it and those kept were not).
 * events: one row per chunk of one thread's events, in order per thread; data is a zstd
 *   frame holding `raw_bytes` bytes of records (format.h).
 * samples: RSS in bytes every sample_interval_ms.
 * sources: each Python source file (a pycode filename not in <...>) as it was when its
 *   first code object was written: size and modification time (ns since the epoch),
 *   from stat() (a relative name relative to meta cwd); a file that could not be
 *   stat'ed has no row. The analyzer compares them with the file it reads the lines
 *   from. Files before session 17 have no such table. */

#endif
