/* run: `memprof run [OPTIONS] PROGRAM [ARGS...]`, the program under libmemprof.so.
 *
 * Sets LD_PRELOAD (the library beside this program in a build tree, else the one of the
 * install tree it is in, else the installed one: run_find_lib) and the settings the options give, then execs the program: it is the program from
 * then on (same pid, its own exit status, signals sent to it reach it alone, once), and
 * with MEMPROF_RUN_ANNOUNCE the library says on stderr which file it wrote when the
 * program ends (writer.c). A program that cannot be started: one line, 127 or 126 as in
 * a shell. */
#include "run.h"

#include <memprof/settings.h>

#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { RUN_BAD = 1, RUN_USAGE = 2 };

void run_usage(FILE *f)
{
	fputs("usage: memprof run [OPTIONS] PROGRAM [ARGS...]\n"
	      "  runs PROGRAM with libmemprof.so preloaded (a PROGRAM ending in .py: python3 PROGRAM),\n"
	      "  exits as it does, and says on stderr which file holds its profile\n"
	      "  -o, --output=PATTERN  the profile's file (MEMPROF_OUTPUT; %p: the pid; a directory: memprof.<pid>.db in\n"
	      "                        it; default memprof.%p.db)\n"
	      "  --native              native stacks too (MEMPROF_NATIVE=1; mixed stacks in Python)\n"
	      "  --sample-bytes=N      sampling mode, one sample per N bytes on average (MEMPROF_SAMPLE_BYTES)\n"
	      "  --follow=WHICH        python|all|root: which processes write a file (MEMPROF_FOLLOW)\n",
	      f);
}

static int run_usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "memprof: run: %s%s%s (memprof run --help for usage)\n", what, arg ? " " : "", arg ? arg : "");
	return RUN_USAGE;
}

/* libmemprof.so: beside this program in a build tree (build/analyzer/memprof,
 * build/preload/libmemprof.so), else in the install tree this program is in (bin/memprof,
 * lib/.../libmemprof.so, wherever the tree was copied), else where `meson install` put
 * it. */
static bool run_lib_in(const char *dir, const char *rel, char *out, size_t cap)
{
	return (size_t)snprintf(out, cap, "%s%s/libmemprof.so", dir, rel) < cap && access(out, R_OK) == 0;
}

static int run_find_lib(char *out, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			if (run_lib_in(self, "/../preload", out, cap) ||
			    (*MEMPROF_LIBDIR_FROM_BIN && run_lib_in(self, "/" MEMPROF_LIBDIR_FROM_BIN, out, cap)))
				return 0;
		}
	}
	if (run_lib_in(MEMPROF_LIBDIR, "", out, cap))
		return 0;
	fprintf(stderr, "memprof: run: cannot find libmemprof.so (looked beside %s, in its install tree and in %s)\n",
		n > 0 ? self : "this program", MEMPROF_LIBDIR);
	return -1;
}

/* Whether the ELF file at path (a name without a slash: looked up in PATH, as execvp
 * does) has no program interpreter: statically linked, the loader never runs in it and
 * LD_PRELOAD means nothing. A script or anything unreadable: false. */
static bool run_elf_static(const char *file)
{
	FILE *f = fopen(file, "rb");
	if (!f)
		return false;
	Elf64_Ehdr eh;
	bool elf = fread(&eh, sizeof eh, 1, f) == 1 && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
		   eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize == sizeof(Elf64_Phdr) &&
		   (eh.e_type == ET_EXEC || eh.e_type == ET_DYN);
	bool interp = false;
	for (unsigned i = 0; elf && i < eh.e_phnum && !interp; i++) {
		Elf64_Phdr ph;
		if (fseek(f, (long)(eh.e_phoff + (Elf64_Off)i * sizeof ph), SEEK_SET) || fread(&ph, sizeof ph, 1, f) != 1)
			elf = false;
		else
			interp = ph.p_type == PT_INTERP;
	}
	fclose(f);
	/* (a static-pie is ET_DYN without an interpreter; a shared library has none either,
	 * but is not run) */
	return elf && !interp;
}

static bool run_is_static(const char *prog)
{
	if (strchr(prog, '/'))
		return run_elf_static(prog);
	const char *path = getenv("PATH");
	char file[PATH_MAX];
	for (const char *p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin"; p;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		if ((size_t)snprintf(file, sizeof file, "%.*s%s%s", (int)n, p, n ? "/" : "", prog) < sizeof file &&
		    access(file, X_OK) == 0)
			return run_elf_static(file);
		p = colon ? colon + 1 : NULL;
	}
	return false;
}

static int run_setenv(const char *name, const char *value)
{
	if (setenv(name, value, 1) != 0) {
		fprintf(stderr, "memprof: run: %s: %s\n", name, strerror(errno));
		return -1;
	}
	return 0;
}

int run_main(int argc, char **argv)
{
	enum { O_NATIVE = 256, O_SAMPLE, O_FOLLOW };
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},    {"native", no_argument, NULL, O_NATIVE},
		{"sample-bytes", required_argument, NULL, O_SAMPLE}, {"follow", required_argument, NULL, O_FOLLOW},
		{"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
	};
	const char *output = NULL, *sample = NULL, *follow = NULL;
	int native = 0, c;
	opterr = 0;
	optind = 1;
	/* '+': the first word that is not an option is the program; the rest are its own */
	while ((c = getopt_long(argc, argv, "+:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case O_NATIVE:
			native = 1;
			break;
		case O_SAMPLE: {
			uint64_t v;
			if (!memprof_parse_u64(optarg, MEMPROF_SAMPLE_BYTES_MAX, &v))
				return run_usage_error("--sample-bytes is not a number of bytes from 0 to 2^40:", optarg);
			sample = optarg;
			break;
		}
		case O_FOLLOW:
			if (strcmp(optarg, "python") && strcmp(optarg, "all") && strcmp(optarg, "root"))
				return run_usage_error("invalid --follow", optarg);
			follow = optarg;
			break;
		case 'h':
			run_usage(stdout);
			return 0;
		case ':':
			return run_usage_error("option needs a value:", argv[optind - 1]);
		default:
			return run_usage_error("unknown option", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return run_usage_error("missing PROGRAM", NULL);
	if (output && !*output)
		return run_usage_error("empty -o", NULL);

	char lib[PATH_MAX];
	if (run_find_lib(lib, sizeof lib))
		return RUN_BAD;
	/* the program's own preloads stay, after memprof's */
	const char *old = getenv("LD_PRELOAD");
	char preload[2 * PATH_MAX];
	if ((size_t)snprintf(preload, sizeof preload, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "") >=
	    sizeof preload) {
		fputs("memprof: run: LD_PRELOAD too long\n", stderr);
		return RUN_BAD;
	}
	if (run_setenv("LD_PRELOAD", preload) || (output && run_setenv("MEMPROF_OUTPUT", output)) ||
	    (native && run_setenv("MEMPROF_NATIVE", "1")) || (sample && run_setenv("MEMPROF_SAMPLE_BYTES", sample)) ||
	    (follow && run_setenv("MEMPROF_FOLLOW", follow)))
		return RUN_BAD;
	char **prog = argv + optind;
	size_t pl = strlen(prog[0]);
	char **args = prog;
	if (pl > 3 && !strcmp(prog[0] + pl - 3, ".py")) {
		int n = argc - optind;
		args = calloc((size_t)n + 2, sizeof *args);
		if (!args) {
			fputs("memprof: run: out of memory\n", stderr);
			return RUN_BAD;
		}
		args[0] = (char *)"python3";
		memcpy(args + 1, prog, (size_t)n * sizeof *args);
	}

	if (run_setenv("MEMPROF_RUN_ANNOUNCE", "1"))
		return RUN_BAD;
	if (run_is_static(args[0]))
		fprintf(stderr, "memprof: run: %s is statically linked: no library can be preloaded into it, so it runs "
				"unprofiled and writes no profile\n",
			args[0]);
	fflush(NULL);
	execvp(args[0], args);
	int err = errno;
	fprintf(stderr, "memprof: run: %s: %s\n", args[0], strerror(err));
	return err == ENOENT ? 127 : 126;
}
