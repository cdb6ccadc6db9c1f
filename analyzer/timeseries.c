/* timeseries: RSS (sampled by the program's sampler thread) and heap (from the pass)
 * over time, as csv, json, or memory_profiler's mprof .dat format. After recording
 * stopped early (a failure memprof said), the heap is not known: empty in CSV, null in
 * JSON. */
#include <inttypes.h>
#include <string.h>

#include "cmd.h"
#include "output.h"

int timeseries_run(profile_t *p, const cmd_opts_t *o, FILE *out)
{
	const db_t *db = &p->db;
	if (strcmp(o->format, "mprof") == 0) {
		/* memory_profiler writes "CMDLINE <cmd>" then "MEM <MiB:.6f> <unix time:.4f>". */
		/* one line: a newline in the command (python3 -c 'a\nb') would be a line
		 * mprof's reader cannot split into field and value */
		fputs("CMDLINE ", out);
		for (const char *c = db->command; *c; c++)
			fputc(*c == '\n' || *c == '\r' ? ' ' : *c, out);
		fputc('\n', out);
		for (size_t i = 0; i < db->n_samples; i++)
			fprintf(out, "MEM %.6f %.4f\n", (double)db->samples[i].rss / 1048576.0,
				db->start_time_unix + db_seconds(db, db->samples[i].ts));
		return 0;
	}
	if (strcmp(o->format, "json") == 0) {
		fputc('{', out);
		profile_json_header(out, p);
		fputs(",\"start_time_unix\":", out);
		output_json_double(out, db->start_time_unix);
		fputs(",\"samples\":[", out);
		for (size_t i = 0; i < db->n_samples; i++) {
			fprintf(out, "%s\n {\"time_s\":", i ? "," : "");
			output_json_double(out, db_seconds(db, db->samples[i].ts));
			fprintf(out, ",\"rss_bytes\":%" PRIu64 ",\"heap_bytes\":", db->samples[i].rss);
			if (profile_heap_known(p, db->samples[i].ts))
				fprintf(out, "%" PRIu64 "}", p->pass.sample_heap[i]);
			else
				fputs("null}", out); /* recording had stopped */
		}
		fputs("\n]}\n", out);
		return 0;
	}
	fputs("time_s,rss_bytes,heap_bytes\n", out);
	for (size_t i = 0; i < db->n_samples; i++) {
		fprintf(out, "%.6f,%" PRIu64 ",", db_seconds(db, db->samples[i].ts), db->samples[i].rss);
		if (profile_heap_known(p, db->samples[i].ts)) /* else empty: recording had stopped */
			fprintf(out, "%" PRIu64, p->pass.sample_heap[i]);
		fputc('\n', out);
	}
	return 0;
}
