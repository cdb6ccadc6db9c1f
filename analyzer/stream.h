/* The event stream: every thread's chunks decompressed one at a time and merged by
 * timestamp into one ordered sequence (FREE before ALLOC on equal timestamps). */
#ifndef MEMPROF_ANALYZER_STREAM_H
#define MEMPROF_ANALYZER_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "memprof/format.h"

typedef struct stream stream_t;

/* Reads the chunk index. Returns NULL with db->err set on failure. */
stream_t *stream_open(db_t *db);
/* Next event in global time order: 1 = *ev filled and *thread set to the recording
 * thread's index (0 .. stream_threads() - 1), 0 = end of stream, -1 = damaged input
 * (db->err set). */
int stream_next(stream_t *s, mp_event_t *ev, uint32_t *thread);
/* Number of threads that have event chunks. */
size_t stream_threads(const stream_t *s);
/* The thread id (threads.id, events.thread) of the thread at that index; -1 if none. */
int64_t stream_thread_id(const stream_t *s, size_t index);
/* Chunks decompressed so far and in all, for progress reports. */
void stream_progress(const stream_t *s, size_t *done, size_t *total);
void stream_close(stream_t *s);

#endif
