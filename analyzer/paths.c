/* paths: lexical file name normalization, see paths.h. */
#include "paths.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *paths_normalize(char *path)
{
	if (!path || !path[0] || path[0] == '<')
		return path;
	int absolute = path[0] == '/';
	char *out = path; /* write position; never ahead of the read position */
	size_t kept = 0;  /* components written that a `..` may remove */
	const char *r = path;
	char *w = out;
	if (absolute)
		*w++ = '/';
	char *base = w; /* start of the components */
	while (*r) {
		while (*r == '/')
			r++;
		if (!*r)
			break;
		const char *end = strchr(r, '/');
		size_t len = end ? (size_t)(end - r) : strlen(r);
		if (len == 1 && r[0] == '.') {
			/* skip */
		} else if (len == 2 && r[0] == '.' && r[1] == '.') {
			if (kept > 0) {
				/* remove the last component and its separator */
				while (w > base && w[-1] != '/')
					w--;
				if (w > base)
					w--;
				kept--;
			} else if (!absolute) {
				if (w > base)
					*w++ = '/';
				*w++ = '.';
				*w++ = '.';
			}
		} else {
			if (w > base)
				*w++ = '/';
			memmove(w, r, len);
			w += len;
			kept++;
		}
		r += len;
	}
	if (w == out)
		*w++ = '.';
	*w = '\0';
	return out;
}

int paths_has_suffix(const char *path, const char *suffix)
{
	size_t n = strlen(path), k = strlen(suffix);
	if (k == 0 || k > n || strcmp(path + n - k, suffix) != 0)
		return 0;
	return k == n || path[n - k - 1] == '/' || suffix[0] == '/';
}

int paths_open_regular(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	return fd;
}
