/* source: a small cache of source files split into trimmed lines. Files that cannot be
 * read are remembered as such, so each file is tried once. */
#include "source.h"
#include "output.h"
#include "paths.h"
#include "zipread.h"

#include <ctype.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SOURCE_MAX_BYTES (64u << 20)

typedef struct source_file {
	char *path;
	char *text;   /* NUL-separated lines without trailing whitespace, NULL if unreadable */
	char **lines; /* lines[i] = line i + 1 */
	int n_lines;
} source_file_t;

/* What a file was when the program ran (source_expect). */
typedef struct source_stamp {
	char *path;
	int64_t size, mtime_ns;
} source_stamp_t;

struct source {
	char *base;
	source_file_t *files; /* the files read */
	size_t n, cap;
	source_stamp_t *stamps; /* sorted by path when the first file is read */
	size_t n_stamps, cap_stamps;
	bool sorted;
	char *stdlib;         /* source_stdlib's answer, once asked */
	bool stdlib_asked;
	unsigned changed;     /* files read that differ from when the program ran */
	char *first_changed;  /* the first of them */
};

source_t *source_new(const char *base)
{
	source_t *s = calloc(1, sizeof(source_t));
	if (s && base)
		s->base = strdup(base);
	return s;
}

void source_free(source_t *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->files[i].path);
		free(s->files[i].text);
		free(s->files[i].lines);
	}
	free(s->files);
	free(s->base);
	for (size_t i = 0; i < s->n_stamps; i++)
		free(s->stamps[i].path);
	free(s->stamps);
	if (s->changed)
		fprintf(stderr,
			"memprof: note: %s%s changed since the program ran (size or modification time): its lines may "
			"not match the numbers\n",
			s->first_changed, s->changed > 1 ? " and other source files" : "");
	free(s->first_changed);
	free(s->stdlib);
	free(s);
}

/* A regular file only (paths_open_regular): no FIFO, no device. */
static FILE *source_fopen(const char *path)
{
	int fd = paths_open_regular(path);
	FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
	if (!f && fd >= 0)
		close(fd);
	return f;
}

void source_expect(source_t *s, const char *file, int64_t size, int64_t mtime_ns)
{
	if (s->n_stamps == s->cap_stamps) {
		s->cap_stamps = s->cap_stamps ? 2 * s->cap_stamps : 64;
		s->stamps = realloc(s->stamps, s->cap_stamps * sizeof *s->stamps);
		if (!s->stamps)
			abort();
	}
	s->stamps[s->n_stamps++] = (source_stamp_t){strdup(file), size, mtime_ns};
	s->sorted = false;
}

static int source_stamp_cmp(const void *a, const void *b)
{
	return strcmp(((const source_stamp_t *)a)->path, ((const source_stamp_t *)b)->path);
}

/* What the file was when the program ran, or NULL if not known. */
static const source_stamp_t *source_stamp(source_t *s, const char *path)
{
	if (!s->n_stamps)
		return NULL;
	if (!s->sorted) {
		qsort(s->stamps, s->n_stamps, sizeof *s->stamps, source_stamp_cmp);
		s->sorted = true;
	}
	source_stamp_t key = {(char *)path, 0, 0};
	return bsearch(&key, s->stamps, s->n_stamps, sizeof *s->stamps, source_stamp_cmp);
}

/* The text of the regular file at path (at most SOURCE_MAX_BYTES; *st its stat, or
 * st_mode 0 for a zip member), or of the member it names in a zip archive (zipread.h);
 * NULL if neither. */
static char *source_read(const char *path, size_t *len, struct stat *st)
{
	memset(st, 0, sizeof *st);
	FILE *f = source_fopen(path);
	if (!f)
		return zipread_path(path, SOURCE_MAX_BYTES, len);
	size_t want = fstat(fileno(f), st) == 0 && S_ISREG(st->st_mode) && st->st_size >= 0 &&
			      (uint64_t)st->st_size < SOURCE_MAX_BYTES
			      ? (size_t)st->st_size
			      : 0;
	char *text = malloc(want + 1);
	*len = text ? fread(text, 1, want, f) : 0;
	fclose(f);
	if (text)
		text[*len] = '\0';
	return text;
}

/* The profiled interpreter's standard library: the first directory named python3.N (N
 * digits) among the recorded source files' that holds os.py here. NULL if none. */
static const char *source_stdlib(source_t *s)
{
	for (size_t i = 0; !s->stdlib_asked && i < s->n_stamps; i++) {
		const char *f = s->stamps[i].path, *at = strstr(f, "/python3.");
		const char *minor = at ? at + sizeof "/python3." - 1 : NULL, *d = minor;
		while (d && isdigit((unsigned char)*d))
			d++;
		if (f[0] != '/' || !d || d == minor || *d != '/')
			continue;
		size_t n = (size_t)(d - f);
		char *os = malloc(n + sizeof "/os.py");
		if (!os)
			break;
		memcpy(os, f, n);
		memcpy(os + n, "/os.py", sizeof "/os.py");
		struct stat st;
		if (stat(os, &st) == 0 && S_ISREG(st.st_mode)) {
			os[n] = '\0';
			s->stdlib = os;
			break;
		}
		free(os);
	}
	s->stdlib_asked = true;
	return s->stdlib;
}

/* The text of a frozen standard module (`<frozen importlib._bootstrap>`: CPython 3.11
 * freezes the modules its start-up imports) from the standard library's copy of its
 * source, which it was frozen from (importlib/_bootstrap.py, or a package's
 * __init__.py). */
static char *source_frozen(source_t *s, const char *name, size_t *len, struct stat *st)
{
	size_t k = strlen("<frozen "), n = strlen(name);
	/* (a module name has no slash) */
	const char *lib = strncmp(name, "<frozen ", k) == 0 && n > k + 1 && name[n - 1] == '>' &&
				  !memchr(name + k, '/', n - k)
			      ? source_stdlib(s)
			      : NULL;
	if (!lib)
		return NULL;
	size_t m = n - k - 1, cap = strlen(lib) + m + sizeof "//__init__.py";
	char *p = malloc(cap), *text = NULL;
	if (!p)
		return NULL;
	int at = snprintf(p, cap, "%s/%.*s", lib, (int)m, name + k);
	for (char *c = p + strlen(lib) + 1; *c; c++)
		*c = *c == '.' ? '/' : *c;
	snprintf(p + at, cap - (size_t)at, ".py");
	text = source_read(p, len, st);
	if (!text) {
		snprintf(p + at, cap - (size_t)at, "/__init__.py");
		text = source_read(p, len, st);
	}
	free(p);
	return text;
}

/* The end of the line at p (LF, CR LF or a lone CR, as Python counts lines; `end` if
 * none), and in *next where the next line starts. */
static const char *source_line_end(const char *p, const char *end, const char **next)
{
	while (p < end && *p != '\n' && *p != '\r')
		p++;
	*next = p + (p + 1 < end && p[0] == '\r' && p[1] == '\n' ? 2 : 1);
	return p;
}

/* The encoding a coding declaration names (PEP 263: `# -*- coding: latin-1 -*-` on the
 * first line, or on the second after a comment or blank first line) in name[cap], as
 * iconv spells it; false if there is none, or it is UTF-8. */
static bool source_coding(const char *text, size_t len, char *name, size_t cap)
{
	const char *p = text, *end = text + len;
	for (int line = 0; line < 2 && p < end; line++) {
		const char *next, *eol = source_line_end(p, end, &next);
		const char *q = p;
		while (q < eol && (*q == ' ' || *q == '\t' || *q == '\f'))
			q++;
		if (q < eol && *q == '#') {
			for (const char *c = q; c + 7 <= eol; c++) {
				if (memcmp(c, "coding", 6) != 0 || (c[6] != ':' && c[6] != '='))
					continue;
				const char *v = c + 7;
				while (v < eol && (*v == ' ' || *v == '\t'))
					v++;
				size_t n = 0;
				for (; v < eol && n + 1 < cap && (isalnum((unsigned char)*v) || strchr("-_.", *v)); v++)
					name[n++] = *v == '_' ? '-' : (char)tolower((unsigned char)*v);
				name[n] = '\0';
				if (!n || strncmp(name, "utf-8", 5) == 0 || strcmp(name, "utf8") == 0)
					return false;
				/* Python's own names for Latin-1, which iconv does not all know */
				if (strncmp(name, "latin-1", 7) == 0 || strncmp(name, "iso-latin-1", 11) == 0)
					snprintf(name, cap, "ISO-8859-1");
				return true;
			}
		} else if (q < eol) {
			return false; /* code on the first line: the second is not looked at */
		}
		p = next;
	}
	return false;
}

/* The text as Python reads it, in UTF-8: a UTF-8 byte order mark dropped, a declared
 * encoding decoded (iconv; left as it is if iconv cannot), then each byte that is still
 * not valid UTF-8 as U+FFFD, so that every output (JSON above all) holds UTF-8. */
static char *source_decode(char *text, size_t *len)
{
	if (*len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
		memmove(text, text + 3, *len - 3 + 1);
		*len -= 3;
	}
	char coding[64];
	if (source_coding(text, *len, coding, sizeof coding)) {
		iconv_t cd = iconv_open("UTF-8", coding);
		size_t cap = 4 * *len + 1, left_in = *len, left_out = cap - 1;
		char *out = cd != (iconv_t)-1 ? malloc(cap) : NULL, *in = text, *o = out;
		if (out && iconv(cd, &in, &left_in, &o, &left_out) != (size_t)-1 &&
		    iconv(cd, NULL, NULL, &o, &left_out) != (size_t)-1) {
			*o = '\0';
			free(text);
			text = out;
			*len = (size_t)(o - out);
		} else {
			free(out);
		}
		if (cd != (iconv_t)-1)
			iconv_close(cd);
	}
	size_t bad = 0;
	for (size_t i = 0; i < *len;) {
		int n = output_utf8_len((const unsigned char *)text + i);
		bad += !n;
		i += n ? (size_t)n : 1;
	}
	if (!bad)
		return text;
	char *out = malloc(*len + 2 * bad + 1), *o = out;
	if (!out)
		return text;
	for (size_t i = 0; i < *len;) {
		int n = output_utf8_len((const unsigned char *)text + i);
		if (n) {
			memcpy(o, text + i, (size_t)n);
			o += n;
			i += (size_t)n;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	*o = '\0';
	*len = (size_t)(o - out);
	free(text);
	return out;
}

static void source_load(source_t *s, source_file_t *sf)
{
	const char *base = s->base;
	char *text = NULL;
	size_t len = 0;
	struct stat st;
	if (sf->path[0] == '<') {
		text = source_frozen(s, sf->path, &len, &st);
		st.st_mode = 0; /* no stamp to compare */
	} else if (sf->path[0] != '/' && base) {
		size_t n = strlen(base) + strlen(sf->path) + 2;
		char *p = malloc(n);
		if (p) {
			snprintf(p, n, "%s/%s", base, sf->path);
			text = source_read(p, &len, &st);
			free(p);
		}
	}
	if (!text)
		text = source_read(sf->path, &len, &st);
	/* A project moved (or copied with its profile to another machine): a file under the
	 * program's working directory is looked up under ours, from the same relative path. */
	size_t nb = base ? strlen(base) : 0;
	if (!text && sf->path[0] == '/' && nb > 1 && strncmp(sf->path, base, nb) == 0 && sf->path[nb] == '/')
		text = source_read(sf->path + nb + 1, &len, &st);
	if (!text)
		return;
	const source_stamp_t *was = S_ISREG(st.st_mode) ? source_stamp(s, sf->path) : NULL;
	if (was &&
	    ((int64_t)st.st_size != was->size ||
	     (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != was->mtime_ns) &&
	    !s->changed++)
		s->first_changed = strdup(sf->path);
	text = source_decode(text, &len);
	int cap = 0;
	for (char *p = text; p < text + len;) {
		const char *next;
		char *eol = (char *)source_line_end(p, text + len, &next);
		*eol = '\0';
		for (char *q = eol; q > p && isspace((unsigned char)q[-1]);)
			*--q = '\0';
		if (sf->n_lines == cap) {
			cap = cap ? 2 * cap : 1024;
			sf->lines = realloc(sf->lines, (size_t)cap * sizeof *sf->lines);
		}
		sf->lines[sf->n_lines++] = p;
		p = (char *)next;
	}
	sf->text = text;
}

static source_file_t *source_file(source_t *s, const char *file)
{
	source_file_t *sf = NULL;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->files[i].path, file) == 0)
			sf = &s->files[i];
	if (!sf) {
		if (s->n == s->cap) {
			s->cap = s->cap ? 2 * s->cap : 16;
			s->files = realloc(s->files, s->cap * sizeof *s->files);
		}
		sf = &s->files[s->n++];
		*sf = (source_file_t){strdup(file), NULL, NULL, 0};
		source_load(s, sf);
	}
	return sf;
}

const char *source_line_raw(source_t *s, const char *file, int line)
{
	if (!file || !*file || line <= 0)
		return NULL;
	const source_file_t *sf = source_file(s, file);
	if (!sf->text || line > sf->n_lines)
		return NULL;
	return sf->lines[line - 1];
}

const char *source_line(source_t *s, const char *file, int line)
{
	const char *p = source_line_raw(s, file, line);
	while (p && isspace((unsigned char)*p))
		p++;
	return p;
}

int source_count(source_t *s, const char *file)
{
	if (!file || !*file)
		return -1;
	const source_file_t *sf = source_file(s, file);
	return sf->text ? sf->n_lines : -1;
}
