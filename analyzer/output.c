/* output: the bytes that leave the analyzer. */
#include "output.h"

#include <math.h>
#include <string.h>

FILE *output_open(const char *path)
{
	if (!path || strcmp(path, "-") == 0)
		return stdout;
	return fopen(path, "w");
}

int output_close(FILE *f)
{
	int err = ferror(f) != 0;
	if (f == stdout)
		err |= fflush(f) != 0;
	else
		err |= fclose(f) != 0;
	return err ? -1 : 0;
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
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

void output_json_double(FILE *f, double v)
{
	if (!isfinite(v))
		v = 0;
	fprintf(f, "%.6f", v);
}
