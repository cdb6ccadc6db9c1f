/* output: the bytes that leave the analyzer. */
#define _GNU_SOURCE /* fopencookie */
#include "output.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int output_open(output_t *o, const char *path)
{
	*o = (output_t){stdout, path, NULL, NULL};
	if (!path || strcmp(path, "-") == 0)
		return 0;
	struct stat st;
	bool exists = lstat(path, &st) == 0;
	if (exists && !S_ISREG(st.st_mode)) { /* also a symbolic link: written through */
		o->f = fopen(path, "w");
		return o->f ? 0 : -1;
	}
	size_t n = strlen(path);
	o->tmp = malloc(n + sizeof ".XXXXXX");
	if (!o->tmp)
		return -1;
	memcpy(o->tmp, path, n);
	memcpy(o->tmp + n, ".XXXXXX", sizeof ".XXXXXX");
	int fd = mkstemp(o->tmp);
	if (fd < 0) {
		free(o->tmp);
		o->tmp = NULL;
		return -1;
	}
	/* the mode fopen would give: the file's own, or 0666 less the umask */
	mode_t mode = exists ? st.st_mode & 07777 : 0666;
	if (!exists) {
		mode_t mask = umask(0);
		umask(mask);
		mode &= ~mask;
	}
	fchmod(fd, mode);
	o->f = fdopen(fd, "w");
	if (!o->f) {
		int e = errno;
		close(fd);
		unlink(o->tmp);
		free(o->tmp);
		o->tmp = NULL;
		errno = e;
		return -1;
	}
	return 0;
}

static ssize_t output_filter_write(void *cookie, const char *buf, size_t n)
{
	FILE *under = cookie;
	char tmp[4096];
	for (size_t done = 0; done < n;) {
		size_t k = n - done < sizeof tmp ? n - done : sizeof tmp;
		for (size_t i = 0; i < k; i++) {
			unsigned char c = (unsigned char)buf[done + i];
			tmp[i] = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?' : (char)c;
		}
		if (fwrite(tmp, 1, k, under) != k)
			return -1;
		done += k;
	}
	return (ssize_t)n;
}

int output_text_filter(output_t *o)
{
	cookie_io_functions_t io = {.write = output_filter_write};
	FILE *f = fopencookie(o->f, "w", io);
	if (!f)
		return -1;
	o->under = o->f;
	o->f = f;
	return 0;
}

int output_close(output_t *o, bool ok)
{
	int err = 0;
	if (o->under) { /* the filter's last bytes into the file first */
		err = fclose(o->f) != 0;
		o->f = o->under;
		o->under = NULL;
	}
	err |= ferror(o->f) != 0;
	if (o->f == stdout)
		err |= fflush(o->f) != 0;
	else
		err |= fclose(o->f) != 0;
	if (o->tmp) {
		if (ok && !err && rename(o->tmp, o->path) != 0)
			err = 1;
		if (!ok || err)
			unlink(o->tmp);
		free(o->tmp);
		o->tmp = NULL;
	}
	return err ? -1 : 0;
}

bool output_same_file(const char *path, const char *other)
{
	struct stat a, b;
	return path && strcmp(path, "-") != 0 && stat(path, &a) == 0 && stat(other, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void output_csv_str(FILE *f, const char *s)
{
	if (!s)
		s = "";
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void output_json_str(FILE *f, const char *s)
{
	if (!s)
		s = "";
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20 || c == 0x7f) {
				fprintf(f, "\\u%04x", c);
			} else {
				int n = output_utf8_len((const unsigned char *)s);
				if (n)
					fwrite(s, 1, (size_t)n, f);
				else
					fputs("\\ufffd", f);
				s += n ? n - 1 : 0;
			}
		}
	}
	fputc('"', f);
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 if it is not one. */
int output_utf8_len(const unsigned char *s)
{
	int n;
	unsigned min;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, min = 0x80;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, min = 0x800;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, min = 0x10000;
	else
		return 0;
	unsigned cp = s[0] & (0x7f >> n);
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

void output_xml_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		switch (*p) {
		case '&': fputs("&amp;", f); p++; continue;
		case '<': fputs("&lt;", f); p++; continue;
		case '>': fputs("&gt;", f); p++; continue;
		case '"': fputs("&quot;", f); p++; continue;
		case '\'': fputs("&apos;", f); p++; continue;
		default: break;
		}
		if (*p < 0x20 && *p != '\t' && *p != '\n') {
			fputc('?', f);
			p++;
			continue;
		}
		int n = output_utf8_len(p);
		if (n == 0) {
			fputc('?', f);
			p++;
			continue;
		}
		fwrite(p, 1, (size_t)n, f);
		p += n;
	}
}

void output_json_double(FILE *f, double v)
{
	if (!isfinite(v))
		v = 0;
	fprintf(f, "%.6f", v);
}
