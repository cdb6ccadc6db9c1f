/* paths: how file names are shown. Python code objects carry the file name the program
 * used (`demo/../tests/x.py`, `./x.py`); outputs show it lexically normalized. */
#ifndef MEMPROF_ANALYZER_PATHS_H
#define MEMPROF_ANALYZER_PATHS_H

/* Normalizes path in place, without looking at the file system: empty and `.`
 * components and repeated slashes go, `dir/..` collapses (`/..` is `/`; a relative
 * path keeps its leading `..`), no trailing slash. Names that are not paths, such as
 * `<frozen importlib._bootstrap>` or `<string>`, are left as they are. Returns path. */
char *paths_normalize(char *path);

/* True if `path` is `suffix` or ends with `/suffix` (whole components only). */
int paths_has_suffix(const char *path, const char *suffix);

/* Opens path for reading if it is a regular file, else -1: never waits on a FIFO (a
 * program read from a named pipe, a module path naming one), never reads a device. */
int paths_open_regular(const char *path);

#endif
