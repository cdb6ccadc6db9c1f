/* zipread: see zipread.h. The archive is read with pread, a region at a time (the end
 * of central directory, the central directory, the member), never mapped: a file cut
 * short while it is read gives NULL, not a signal. */
#include "zipread.h"
#include "paths.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP_CDIR_SIG 0x02014b50u
#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_EOCD_LEN 22
#define ZIP_CDIR_LEN 46
#define ZIP_LOCAL_LEN 30
#define ZIP_COMMENT_MAX 65535
#define ZIP_CDIR_MAX (64u << 20) /* a central directory larger than this is not read */

static uint32_t zip_u16(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t zip_u32(const unsigned char *p)
{
	return zip_u16(p) | zip_u16(p + 2) << 16;
}

/* n bytes at off into a new buffer (NULL if the file has fewer). */
static unsigned char *zip_pread(int fd, uint64_t off, size_t n)
{
	unsigned char *b = malloc(n ? n : 1);
	size_t got = 0;
	while (b && got < n) {
		ssize_t r = pread(fd, b + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(b);
			return NULL;
		}
		got += (size_t)r;
	}
	return b;
}

/* The member's bytes as stored (method 0) or deflated (8), made into its text, which
 * must have the CRC-32 the archive gives. */
static char *zip_extract(const unsigned char *in, size_t csize, unsigned method, size_t usize, uint32_t crc,
			 size_t *len)
{
	char *out = malloc(usize + 1);
	if (!out)
		return NULL;
	if (method == 0) {
		if (csize != usize) {
			free(out);
			return NULL;
		}
		memcpy(out, in, usize);
	} else {
		z_stream z = {0};
		if (inflateInit2(&z, -MAX_WBITS) != Z_OK) {
			free(out);
			return NULL;
		}
		z.next_in = (Bytef *)(uintptr_t)in;
		z.avail_in = (uInt)csize;
		z.next_out = (Bytef *)out;
		z.avail_out = (uInt)usize;
		int rc = inflate(&z, Z_FINISH);
		bool ok = rc == Z_STREAM_END && z.total_out == usize;
		inflateEnd(&z);
		if (!ok) {
			free(out);
			return NULL;
		}
	}
	if (crc32(0, (const Bytef *)out, (uInt)usize) != crc) {
		free(out);
		return NULL;
	}
	out[usize] = '\0';
	*len = usize;
	return out;
}

/* The member `name` of the archive open on fd (size bytes). */
static char *zip_member(int fd, uint64_t size, const char *name, size_t max_bytes, size_t *len)
{
	if (size < ZIP_EOCD_LEN)
		return NULL;
	size_t tail = size < ZIP_EOCD_LEN + ZIP_COMMENT_MAX ? (size_t)size : ZIP_EOCD_LEN + ZIP_COMMENT_MAX;
	unsigned char *t = zip_pread(fd, size - tail, tail);
	if (!t)
		return NULL;
	/* the last end record whose comment fits in the file */
	const unsigned char *e = NULL;
	for (size_t i = tail - ZIP_EOCD_LEN + 1; i-- > 0;)
		if (zip_u32(t + i) == ZIP_EOCD_SIG && i + ZIP_EOCD_LEN + zip_u16(t + i + 20) <= tail) {
			e = t + i;
			break;
		}
	uint64_t eocd = e ? size - tail + (uint64_t)(e - t) : 0;
	uint32_t entries = e ? zip_u16(e + 10) : 0, cd_size = e ? zip_u32(e + 12) : 0, cd_off = e ? zip_u32(e + 16) : 0;
	free(t);
	/* ZIP64 (these fields all ones) is what zipimport of Python 3.11 does not read either */
	if (!e || entries == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu || cd_size > eocd ||
	    cd_size > ZIP_CDIR_MAX || (uint64_t)cd_off > eocd - cd_size)
		return NULL;
	/* bytes before the archive (a zipapp's #! line) move every offset by `before` */
	uint64_t before = eocd - cd_size - cd_off;
	unsigned char *cd = zip_pread(fd, eocd - cd_size, cd_size);
	if (!cd)
		return NULL;
	size_t nlen = strlen(name);
	char *text = NULL;
	size_t at = 0;
	for (uint32_t k = 0; k < entries && at + ZIP_CDIR_LEN <= cd_size; k++) {
		const unsigned char *c = cd + at;
		if (zip_u32(c) != ZIP_CDIR_SIG)
			break;
		uint32_t flags = zip_u16(c + 8), method = zip_u16(c + 10), crc = zip_u32(c + 16), csize = zip_u32(c + 20),
			 usize = zip_u32(c + 24), n = zip_u16(c + 28), local = zip_u32(c + 42);
		size_t next = at + ZIP_CDIR_LEN + n + zip_u16(c + 30) + zip_u16(c + 32);
		if (ZIP_CDIR_LEN + n > cd_size - at)
			break;
		if (n != nlen || memcmp(c + ZIP_CDIR_LEN, name, n) != 0) {
			at = next;
			continue;
		}
		/* found: not encrypted, stored or deflated, within the limit */
		if ((flags & 1) || (method != 0 && method != 8) || usize > max_bytes || csize > max_bytes + 65536 ||
		    before + local > size)
			break;
		unsigned char *lh = zip_pread(fd, before + local, ZIP_LOCAL_LEN);
		if (lh && zip_u32(lh) == ZIP_LOCAL_SIG) {
			uint64_t data = before + local + ZIP_LOCAL_LEN + zip_u16(lh + 26) + zip_u16(lh + 28);
			unsigned char *in = data <= size ? zip_pread(fd, data, csize) : NULL;
			if (in)
				text = zip_extract(in, csize, method, usize, crc, len);
			free(in);
		}
		free(lh);
		break;
	}
	free(cd);
	return text;
}

char *zipread_path(const char *path, size_t max_bytes, size_t *len)
{
	size_t n = strlen(path);
	if (!n)
		return NULL;
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, path, n + 1);
	char *text = NULL;
	/* The leading components are directories up to the archive, a regular file; the
	 * rest (at least one component) is the member's name. */
	for (char *slash = strchr(p + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		struct stat st;
		int r = stat(p, &st);
		*slash = '/';
		if (r != 0)
			break;
		if (S_ISDIR(st.st_mode))
			continue;
		*slash = '\0';
		int fd = S_ISREG(st.st_mode) ? paths_open_regular(p) : -1;
		*slash = '/';
		if (fd >= 0 && slash[1] && fstat(fd, &st) == 0)
			text = zip_member(fd, (uint64_t)st.st_size, slash + 1, max_bytes, len);
		if (fd >= 0)
			close(fd);
		break;
	}
	free(p);
	return text;
}
