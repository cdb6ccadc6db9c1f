/* The writer thread: the only code that touches the file. It drains every thread's
 * event blocks, encodes them into compressed chunks, and writes them, the new stack
 * nodes, code objects, modules and samples into the SQLite database in large
 * transactions, committed every flush interval (so a killed process loses at most
 * about that much). It runs with all signals blocked and permanently inside the guard;
 * its SQLite is a private static copy whose memory comes from memprof's own arena. */
#ifndef MEMPROF_PRELOAD_WRITER_H
#define MEMPROF_PRELOAD_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Opens `path` (already created exclusively by the caller), writes the schema and
 * meta, starts the thread. 0 on success, negative errno-style on failure. */
int writer_start(const char *path);
void writer_wake(void);
bool writer_alive(void);
/* The calling process is the one whose file the writer writes, and it runs (not a vfork
 * child sharing its memory, not a fork child that writes no file). */
bool writer_records_here(void);
/* Writes everything recorded so far and closes the file; recording stops. Safe to call
 * more than once and from any thread of the process that owns the writer. */
void writer_final_flush(void);
/* The process names its file on stderr when it ends (`memprof run`). */
/* `at_exec`: the file is also named when the process execs, since the image it execs
 * writes a file of its own (init.c: a program that is not a wrapper). */
void writer_announce(const char *path, bool at_exec);
/* The writer thread's kernel id (0 before it runs). */
pid_t writer_tid(void);
/* Writes and commits everything recorded so far, recording going on (before exec);
 * waits at most timeout_ms. */
void writer_sync(unsigned timeout_ms);
/* Around exec: write everything and mark the file complete; undo if exec failed. */
void writer_exec_begin(void);
void writer_exec_failed(void);
/* Synchronous flush, for fatal signals: waits at most timeout_ms. */
void writer_emergency_flush(unsigned timeout_ms);
void writer_before_dlclose(void);
/* Adds a meta row (before writer_start's thread runs, or from the writer). */
void writer_set_meta(const char *key, const char *value);
/* The working directory at start: relative Python file names are stat'ed from it (the
 * sources table). */
void writer_note_cwd(const char *cwd);
void writer_add_sample(uint64_t ts, uint64_t rss);
/* The errno of the last failed write or truncation of memprof's files, 0 if none. */
int writer_io_errno(void);

void writer_fork_prepare(void);
void writer_fork_parent(void);
/* The child: the parent's writer thread does not exist here; forget its state. */
void writer_fork_child(void);

#endif
