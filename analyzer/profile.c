/* profile: see profile.h. */
#include "profile.h"
#include "source.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "units.h"

static bool profile_still_running(const db_t *db)
{
	/* its pid is a process of this machine that started no later than the profile did
	 * (the process's start in clock ticks after boot, field 22 of its stat line) */
	char path[64], line[1024];
	snprintf(path, sizeof path, "/proc/%" PRId64 "/stat", db->pid);
	FILE *f = db->pid > 0 ? fopen(path, "r") : NULL;
	size_t n = f ? fread(line, 1, sizeof line - 1, f) : 0;
	if (f)
		fclose(f);
	line[n] = '\0';
	const char *q = strrchr(line, ')'); /* after the command's name, which may hold spaces */
	unsigned long long start = 0;
	for (int field = 2; q && *q && field < 22; q++)
		if (*q == ' ' && ++field == 22)
			start = strtoull(q + 1, NULL, 10);
	struct sysinfo si;
	long hz = sysconf(_SC_CLK_TCK);
	if (!start || hz <= 0 || sysinfo(&si) != 0)
		return false;
	/* the process started when the profile did, or earlier: an image it exec'd later
	 * starts its own profile (a pid reused since started after it) */
	double boot = (double)time(NULL) - (double)si.uptime;
	return boot + (double)start / (double)hz < db->start_time_unix + 2.0;
}

int profile_open(profile_t *p, const char *path, const char *focus)
{
	memset(p, 0, sizeof *p);
	if (db_open(&p->db, path) || pass_run(&p->pass, &p->db) || profile_analyzed(p, focus))
		return -1;
	if (focus && !locate_focus_matched(p->locate))
		fprintf(stderr, "memprof: note: no Python frame of the profile is in %s (--focus): the figures are "
				"as without it\n", focus);
	return 0;
}

int profile_analyzed(profile_t *p, const char *focus)
{
	p->locate = locate_new(&p->db, focus);
	if (!p->locate)
		return db_fail(&p->db, "out of memory");
	p->duration_s = db_seconds(&p->db, pass_last_ticks(&p->pass, &p->db));
	p->peak_time_s = p->pass.peak_heap ? db_seconds(&p->db, p->pass.peak_ts) : 0;
	p->still_running = strcmp(p->db.status, "running") == 0 && profile_still_running(&p->db);
	return 0;
}

void profile_close(profile_t *p)
{
	locate_free(p->locate);
	pass_free(&p->pass);
	db_close(&p->db);
}

bool profile_heap_known(const profile_t *p, uint64_t ts)
{
	return !p->db.stopped_reason || ts <= p->db.stopped_ticks;
}

void profile_text_header(FILE *f, const profile_t *p, const char *what)
{
	char b1[UNITS_BUF], b2[UNITS_BUF];
	fprintf(f, "memprof %s: %s\n", what, p->db.command[0] ? p->db.command : "(unknown command)");
	fprintf(f, "pid %" PRId64 ", duration %.3f s, peak heap %s at %.3f s, %s allocation%s\n",
		p->db.pid, p->duration_s, units_bytes(b1, p->pass.peak_heap), p->peak_time_s,
		units_count(b2, p->pass.allocations), units_s(p->pass.allocations));
	profile_text_notes(f, p, "");
}

void profile_text_notes(FILE *f, const profile_t *p, const char *who)
{
	char b1[UNITS_BUF];
	if (strcmp(p->db.status, "running") == 0)
		fprintf(f, p->still_running ? "note: %sthe program is still running: data ends at %.3f s\n"
					    : "note: %sthe profile was not closed cleanly (process killed, or its file unwritable?): "
					      "data ends at %.3f s\n",
			who, p->duration_s);
	if (p->db.stopped_reason)
		fprintf(f, "WARNING: %srecording stopped at %.3f s (%s): nothing after it is counted\n", who,
			db_seconds(&p->db, p->db.stopped_ticks), p->db.stopped_reason);
	if (p->db.dropped_events)
		fprintf(f, "WARNING: %s%s events were dropped while recording: numbers are incomplete\n", who,
			units_count(b1, p->db.dropped_events));
	if (p->pass.sample_bytes > 0)
		fprintf(f, "%ssampled: one allocation recorded per %s allocated on average; figures are estimates\n",
			who, units_bytes(b1, (uint64_t)p->pass.sample_bytes));
}

void profile_json_header(FILE *f, const profile_t *p)
{
	fputs("\"command\":", f);
	output_json_str(f, p->db.command);
	fprintf(f, ",\"pid\":%" PRId64 ",\"duration_s\":", p->db.pid);
	output_json_double(f, p->duration_s);
	fprintf(f, ",\"peak_heap_bytes\":%" PRIu64 ",\"peak_time_s\":", p->pass.peak_heap);
	output_json_double(f, p->peak_time_s);
	fprintf(f, ",\"dropped_events\":%" PRIu64 ",\"recording_stopped\":", p->db.dropped_events);
	if (p->db.stopped_reason) {
		fputs("{\"time_s\":", f);
		output_json_double(f, db_seconds(&p->db, p->db.stopped_ticks));
		fputs(",\"reason\":", f);
		output_json_str(f, p->db.stopped_reason);
		fputc('}', f);
	} else {
		fputs("null", f);
	}
	fputs(",\"status\":", f);
	output_json_str(f, p->db.status);
	/* 0: every allocation recorded; else the figures are estimates (Sampling mode) */
	fprintf(f, ",\"sample_bytes\":%.0f", p->pass.sample_bytes > 0 ? p->pass.sample_bytes : 0.0);
}

source_t *profile_source(const profile_t *p)
{
	source_t *s = source_new(p->db.cwd);
	for (size_t i = 0; s && i < p->db.n_sources; i++)
		source_expect(s, p->db.sources[i].filename, p->db.sources[i].size, p->db.sources[i].mtime_ns);
	return s;
}
