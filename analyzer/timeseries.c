/* timeseries: RSS (sampled by the program's sampler thread) and heap (from the pass)
 * over time, as csv, json, or memory_profiler's mprof .dat format. After recording
 * stopped early (a failure memprof said), the heap is not known: empty in CSV, null in
 * JSON. */
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "cmd.h"
#include "merge.h"
#include "output.h"

/* memory_profiler writes "CMDLINE <cmd>" then "MEM <MiB:.6f> <unix time:.4f>" (and, with
 * `mprof run --multiprocess`, "CHLD <pid> <MiB> <unix time>" for its children). */
static void timeseries_mprof_cmdline(FILE *out, const db_t *db)
{
	/* one line: a newline in the command (python3 -c 'a\nb') would be a line mprof's
	 * reader cannot split into field and value */
	fputs("CMDLINE ", out);
	for (const char *c = db->command; *c; c++)
		fputc(*c == '\n' || *c == '\r' ? ' ' : *c, out);
	fputc('\n', out);
}

/* One process's RSS samples: MEM lines, or CHLD lines of that pid. */
static void timeseries_mprof_samples(FILE *out, const db_t *db, bool child)
{
	for (size_t i = 0; i < db->n_samples; i++) {
		if (child)
			fprintf(out, "CHLD %" PRId64 " ", db->pid);
		else
			fputs("MEM ", out);
		fprintf(out, "%.6f %.4f\n", (double)db->samples[i].rss / 1048576.0,
			db->start_time_unix + db_seconds(db, db->samples[i].ts));
	}
}

/* CSV or JSON: the start (for JSON: the object's header members are written by the caller
 * between '{' and this), one row a sample (i counts them), the end. The heap of a sample
 * after recording stopped is not known: empty in CSV, null in JSON. */
static void timeseries_begin(FILE *out, bool json, double start_time_unix)
{
	if (json) {
		fputs(",\"start_time_unix\":", out);
		output_json_double(out, start_time_unix);
		fputs(",\"samples\":[", out);
	} else {
		fputs("time_s,rss_bytes,heap_bytes\n", out);
	}
}

static void timeseries_row(FILE *out, bool json, size_t i, double t, uint64_t rss, uint64_t heap, bool known)
{
	if (json) {
		fprintf(out, "%s\n {\"time_s\":", i ? "," : "");
		output_json_double(out, t);
		fprintf(out, ",\"rss_bytes\":%" PRIu64 ",\"heap_bytes\":", rss);
		if (known)
			fprintf(out, "%" PRIu64 "}", heap);
		else
			fputs("null}", out);
	} else {
		fprintf(out, "%.6f,%" PRIu64 ",", t, rss);
		if (known)
			fprintf(out, "%" PRIu64, heap);
		fputc('\n', out);
	}
}

static void timeseries_end(FILE *out, bool json)
{
	if (json)
		fputs("\n]}\n", out);
}

static int timeseries_run_merged(merge_t *m, const cmd_opts_t *o, FILE *out);

int timeseries_run(profile_t *p, merge_t *m, const cmd_opts_t *o, FILE *out)
{
	if (m)
		return timeseries_run_merged(m, o, out);
	const db_t *db = &p->db;
	if (strcmp(o->format, "mprof") == 0) {
		timeseries_mprof_cmdline(out, db);
		timeseries_mprof_samples(out, db, false);
		return 0;
	}
	bool json = strcmp(o->format, "json") == 0;
	if (json) {
		fputc('{', out);
		profile_json_header(out, p);
	}
	timeseries_begin(out, json, db->start_time_unix);
	for (size_t i = 0; i < db->n_samples; i++)
		timeseries_row(out, json, i, db_seconds(db, db->samples[i].ts), db->samples[i].rss, p->pass.sample_heap[i],
			       profile_heap_known(p, db->samples[i].ts));
	timeseries_end(out, json);
	return 0;
}

/* Several processes (merge.h): their RSS and heaps added up at each process's samples,
 * in seconds after the first start; mprof: the first process's samples as MEM lines and
 * the others' as CHLD lines, as `mprof run --multiprocess` writes them (`mprof plot`
 * draws each child's curve). */
static int timeseries_run_merged(merge_t *m, const cmd_opts_t *o, FILE *out)
{
	if (strcmp(o->format, "mprof") == 0) {
		timeseries_mprof_cmdline(out, &m->p[m->first].db);
		for (size_t i = 0; i < m->n; i++)
			timeseries_mprof_samples(out, &m->p[i].db, i != m->first);
		return 0;
	}
	bool json = strcmp(o->format, "json") == 0;
	if (json) {
		fputc('{', out);
		merge_json_header(out, m);
	}
	timeseries_begin(out, json, m->p[m->first].db.start_time_unix);
	for (size_t i = 0; i < m->n_samples; i++) {
		const merge_sample_t *s = &m->samples[i];
		timeseries_row(out, json, i, s->t, s->rss, s->heap, s->heap_known);
	}
	timeseries_end(out, json);
	return 0;
}
