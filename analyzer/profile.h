/* profile: one analyzed profile, what every command starts from: the opened database,
 * the completed pass and the stack locator, plus the header every output carries
 * (command, pid, duration, peak heap and its time, dropped events). */
#ifndef MEMPROF_ANALYZER_PROFILE_H
#define MEMPROF_ANALYZER_PROFILE_H

#include <stdio.h>

#include "db.h"
#include "locate.h"
#include "pass.h"

typedef struct profile {
	db_t db;
	pass_t pass;
	locate_t *locate;
	double duration_s;
	double peak_time_s;
	/* status "running" and its program still running now (on this machine: its pid is a
	 * process that started no later than the profile did); false for one killed */
	bool still_running;
} profile_t;

/* Opens, validates and runs the pass. Returns 0, or -1 with the reason in p->db.err. */
int profile_open(profile_t *p, const char *path, const char *focus);
/* What profile_open does once the pass is over (the locator, the times); for profiles
 * whose passes merge.c runs. Returns 0, or -1 with the reason in p->db.err. */
int profile_analyzed(profile_t *p, const char *focus);
void profile_close(profile_t *p);

/* "memprof <what>: <command>" then pid/duration/peak lines and a dropped-events warning. */
/* Whether the heap is known at clock tick ts: recording had not stopped by then (a
 * profile whose recording stopped early knows nothing of what came after). */
bool profile_heap_known(const profile_t *p, uint64_t ts);
void profile_text_header(FILE *f, const profile_t *p, const char *what);
/* The header's notes and warnings (still running, not closed, recording stopped, events
 * dropped, sampled), each line's message starting with `who` ("" or "pid N: "). */
void profile_text_notes(FILE *f, const profile_t *p, const char *who);
/* `"command":...,"pid":...,...` members (no braces), for the top of a JSON object. */
void profile_json_header(FILE *f, const profile_t *p);
/* The source files' text for the text outputs (source.h), told what each file was when
 * the program ran. */
struct source *profile_source(const profile_t *p);

#endif
