/* memprof: the analyzer command. Dispatches to one command per profile view; parses
 * and validates options here so commands only see checked values.
 * Exit status: 0 success, 1 bad input or output failure, 2 usage error. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "merge.h"
#include "memprof/schema.h"
#include "output.h"
#include "progress.h"
#include "run.h"

enum { MAIN_OK = 0, MAIN_BAD_INPUT = 1, MAIN_USAGE = 2 };

/* Which options a command takes, beyond --format and -o. */
enum { OPT_SORT = 1, OPT_LIMIT = 2, OPT_FOCUS = 4, OPT_BY = 8, OPT_METRIC = 16, OPT_NEVER = 32 };

typedef struct main_cmd {
	const char *name;
	const char *formats[4]; /* first = default */
	unsigned opts;
	/* m: several processes' files read together (merge.h), p its first; else NULL */
	int (*run)(profile_t *p, merge_t *m, const cmd_opts_t *o, FILE *out);
	const char *summary;
	const char *target; /* a positional argument before FILE (shown in usage), or NULL */
} main_cmd_t;

static int main_peak(profile_t *p, merge_t *m, const cmd_opts_t *o, FILE *out)
{
	return stacks_run(p, m, o, out, 0);
}

static int main_leaks(profile_t *p, merge_t *m, const cmd_opts_t *o, FILE *out)
{
	return stacks_run(p, m, o, out, 1);
}

static const main_cmd_t main_cmds[] = {
	{"report", {"text", "csv", "json"}, OPT_SORT | OPT_LIMIT | OPT_FOCUS | OPT_BY, report_run,
	 "per-location table: peak, allocated, allocations, live at end", NULL},
	{"stats", {"text", "json"}, OPT_FOCUS, stats_run,
	 "totals, peak heap and RSS, size histogram, top lines", NULL},
	{"timeseries", {"csv", "json", "mprof"}, 0, timeseries_run,
	 "RSS and heap over time (mprof: memory_profiler .dat)", NULL},
	{"peak", {"text", "json"}, OPT_LIMIT | OPT_FOCUS, main_peak,
	 "stacks live at the heap peak, largest first", NULL},
	{"leaks", {"text", "json"}, OPT_LIMIT | OPT_FOCUS | OPT_NEVER, main_leaks,
	 "stacks alive at the end of the program, largest first", NULL},
	{"temporary", {"text", "csv", "json"}, OPT_LIMIT | OPT_FOCUS, temporary_run,
	 "allocations freed by their thread before its next allocation, by line", NULL},
	{"lines", {"text", "csv", "json"}, 0, lines_run,
	 "every line of a Python file or function with its memory", "FILE.py[:FUNCTION]"},
	{"flamegraph", {"svg", "folded"}, OPT_METRIC, flamegraph_run,
	 "interactive SVG flame graph of the stacks (folded: frame;frame bytes)", NULL},
	{"plot", {"svg"}, 0, plot_run, "RSS and heap over time as an SVG chart, heap peak marked", NULL},
};

static void main_usage(FILE *f)
{
	fputs("usage: memprof COMMAND [OPTIONS] FILE\n       memprof COMMAND [OPTIONS] FILE FILE...  (several processes together)\n\ncommands:\n", f);
	for (size_t i = 0; i < sizeof main_cmds / sizeof *main_cmds; i++) {
		const main_cmd_t *c = &main_cmds[i];
		if (c->target)
			fprintf(f, "  %-11s %s FILE: %s\n  %-11s --format=", c->name, c->target, c->summary, "");
		else
			fprintf(f, "  %-11s %s\n  %-11s --format=", c->name, c->summary, "");
		for (int k = 0; k < 4 && c->formats[k]; k++)
			fprintf(f, "%s%s", k ? "|" : "", c->formats[k]);
		fputs(c->opts & OPT_SORT ? " --sort=peak|allocated|count|end" : "", f);
		fputs(c->opts & OPT_LIMIT ? " --limit=N" : "", f);
		fputs(c->opts & OPT_FOCUS ? " --focus=PATH" : "", f);
		fputs(c->opts & OPT_BY ? " --by=line|function|file" : "", f);
		fputs(c->opts & OPT_METRIC ? " --metric=peak|allocated|end|leaked" : "", f);
		fputs(c->opts & OPT_NEVER ? " --never-freed" : "", f);
		fputc('\n', f);
	}
	fputs("  run         PROGRAM [ARGS...]: run a program under memprof (memprof run --help)\n", f);
	fputs("\noptions for every command:\n"
	      "  -o, --output=FILE  write to FILE instead of standard output\n"
	      "  -h, --help         this help\n"
	      "  --limit=0 means no limit; --focus=PATH reports the innermost Python frame under PATH\n",
	      f);
}

__attribute__((format(printf, 1, 2))) static int main_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("memprof: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (memprof --help for usage)\n", stderr);
	return MAIN_USAGE;
}

static int main_pick(const char *what, const char *value, const char *const *names, int n, int *out)
{
	for (int i = 0; i < n; i++)
		if (strcmp(value, names[i]) == 0) {
			*out = i;
			return 0;
		}
	return main_usage_error("invalid %s '%s'", what, value);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return main_usage(stderr), MAIN_USAGE;
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)
		return main_usage(stdout), MAIN_OK;
	if (strcmp(argv[1], "--version") == 0) {
		printf("memprof %s (schema version %d)\n", MP_VERSION, MP_SCHEMA_VERSION);
		return MAIN_OK;
	}
	if (strcmp(argv[1], "run") == 0)
		return run_main(argc - 1, argv + 1);
	const main_cmd_t *cmd = NULL;
	for (size_t i = 0; i < sizeof main_cmds / sizeof *main_cmds; i++)
		if (strcmp(argv[1], main_cmds[i].name) == 0)
			cmd = &main_cmds[i];
	if (!cmd)
		return main_usage_error("unknown command '%s'", argv[1]);

	enum { O_FORMAT = 256, O_SORT, O_LIMIT, O_FOCUS, O_BY, O_METRIC, O_NEVER };
	static const struct option longopts[] = {
		{"format", required_argument, NULL, O_FORMAT}, {"output", required_argument, NULL, 'o'},
		{"sort", required_argument, NULL, O_SORT},     {"limit", required_argument, NULL, O_LIMIT},
		{"focus", required_argument, NULL, O_FOCUS},   {"by", required_argument, NULL, O_BY},
		{"metric", required_argument, NULL, O_METRIC}, {"never-freed", no_argument, NULL, O_NEVER},
		{"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0},
	};
	cmd_opts_t o = {.format = cmd->formats[0], .limit = -1};
	int c, k;
	int sub_argc = argc - 1;
	char **sub_argv = argv + 1;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(sub_argc, sub_argv, ":o:h", longopts, NULL)) != -1) {
		unsigned need = c == O_SORT ? OPT_SORT : c == O_LIMIT ? OPT_LIMIT : c == O_FOCUS ? OPT_FOCUS
			      : c == O_BY ? OPT_BY : c == O_METRIC ? OPT_METRIC : c == O_NEVER ? OPT_NEVER : 0;
		if (need && !(cmd->opts & need))
			return main_usage_error("%s does not take %s", cmd->name, sub_argv[optind - 1]);
		switch (c) {
		case O_FORMAT: {
			int n = 0;
			while (n < 4 && cmd->formats[n])
				n++;
			if (main_pick("--format", optarg, cmd->formats, n, &k))
				return MAIN_USAGE;
			o.format = cmd->formats[k];
			break;
		}
		case 'o':
			/* "-o=out.txt" is -o with the value "=out.txt": surely not the name meant */
			if (optarg[0] == '=' && sub_argv[optind - 1][0] == '-' && sub_argv[optind - 1][1] == 'o')
				return main_usage_error("-o%s: write -o FILE or --output=FILE", optarg);
			o.output = optarg;
			break;
		case O_SORT: {
			static const char *const names[] = {"peak", "allocated", "count", "end"};
			if (main_pick("--sort", optarg, names, 4, &k))
				return MAIN_USAGE;
			o.sort = (rows_sort_t)k;
			break;
		}
		case O_BY: {
			static const char *const names[] = {"line", "function", "file"};
			if (main_pick("--by", optarg, names, 3, &k))
				return MAIN_USAGE;
			o.by = (rows_by_t)k;
			break;
		}
		case O_LIMIT: {
			char *end;
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (!*optarg || *end || v < 0 || errno)
				return main_usage_error("invalid --limit '%s'", optarg);
			o.limit = v;
			break;
		}
		case O_FOCUS:
			o.focus = optarg;
			break;
		case O_METRIC: {
			static const char *const names[] = {"peak", "allocated", "end", "leaked"};
			if (main_pick("--metric", optarg, names, 4, &k))
				return MAIN_USAGE;
			o.metric = k;
			break;
		}
		case O_NEVER:
			o.never_freed = true;
			break;
		case 'h':
			main_usage(stdout);
			return MAIN_OK;
		case ':':
			return main_usage_error("option %s needs a value", sub_argv[optind - 1]);
		default:
			return main_usage_error("unknown option '%s'", sub_argv[optind - 1]);
		}
	}
	if (cmd->target) {
		if (optind >= sub_argc)
			return main_usage_error("%s: missing %s", cmd->name, cmd->target);
		o.target = sub_argv[optind++];
	}
	if (optind >= sub_argc)
		return main_usage_error("%s: missing FILE", cmd->name);
	/* several files: the processes read together (merge.h) */
	bool merged = optind + 1 < sub_argc;
	char *const *paths = sub_argv + optind;
	size_t n_paths = (size_t)(sub_argc - optind);

	if (o.output && !*o.output)
		return main_usage_error("%s: -o needs a file name", cmd->name);
	/* a profile, or SQLite's files beside it (a copy of a running program's profile
	 * keeps its tables in the -wal file) */
	static const char *const sides[] = {"", "-wal", "-shm", "-journal"};
	for (size_t f = 0; o.output && f < n_paths; f++)
		for (size_t i = 0; i < sizeof sides / sizeof *sides; i++) {
			char side[4096];
			if (snprintf(side, sizeof side, "%s%s", paths[f], sides[i]) < (int)sizeof side &&
			    output_same_file(o.output, side))
				return main_usage_error("%s: -o %s would overwrite the profile it reads", cmd->name,
							o.output);
		}

	profile_t p;
	merge_t m;
	progress_start();
	if (merged) {
		if (merge_open(&m, paths, n_paths, o.focus)) {
			merge_close(&m);
			return MAIN_BAD_INPUT;
		}
	} else if (profile_open(&p, paths[0], o.focus)) {
		fprintf(stderr, "memprof: %s: %s\n", paths[0], p.db.err);
		profile_close(&p);
		return MAIN_BAD_INPUT;
	}
	output_t out;
	int rc = 0;
	if (output_open(&out, o.output)) {
		fprintf(stderr, "memprof: %s: %s\n", o.output, strerror(errno));
		rc = MAIN_BAD_INPUT;
	} else if (strcmp(o.format, "text") == 0 && output_text_filter(&out)) {
		fprintf(stderr, "memprof: out of memory\n");
		output_close(&out, false);
		rc = MAIN_BAD_INPUT;
	} else {
		rc = merged ? cmd->run(&m.p[0], &m, &o, out.f) : cmd->run(&p, NULL, &o, out.f);
		/* no half-written file, and a file that was there stays as it was: the command
		 * said why it failed */
		if (output_close(&out, !rc) && !rc) {
			fprintf(stderr, "memprof: %s: write error\n", o.output ? o.output : "standard output");
			rc = MAIN_BAD_INPUT;
		}
	}
	if (merged)
		merge_close(&m);
	else
		profile_close(&p);
	return rc ? MAIN_BAD_INPUT : MAIN_OK;
}
