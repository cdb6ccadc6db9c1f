/* zipread: one member of a zip archive, for the source of modules Python imported from
 * one (a zipapp, an egg or wheel on sys.path), whose file name is the archive's path
 * followed by the member's name: /srv/app.pyz/pkg/mod.py. Reads what CPython 3.11's
 * zipimport reads: members stored or deflated, not encrypted, in an archive that may
 * have bytes before it (a zipapp's #! line), without ZIP64; a member whose CRC-32 is not
 * the one the archive gives is not read. */
#ifndef MEMPROF_ANALYZER_ZIPREAD_H
#define MEMPROF_ANALYZER_ZIPREAD_H

#include <stddef.h>

/* The text of the member that `path` names inside an archive (a regular file that is
 * one of path's leading components), at most max_bytes long, NUL-terminated, malloc'd;
 * *len its length. NULL when no leading component is an archive, the member is not
 * there or cannot be read. */
char *zipread_path(const char *path, size_t max_bytes, size_t *len);

#endif
