/* memprof's private SQLite (linked statically, preload/meson.build) without the
 * extensions Debian builds into it: full-text search (FTS3/4 and FTS5), R*Tree, the
 * dbstat and sqlite_stmt virtual tables. sqlite3_open registers each through these
 * functions; defined here, they register nothing, and the linker leaves the archive's
 * objects that define them (343 KB of code) out of libmemprof.so, whose pages
 * every profiled process maps (libmemprof.so 2.20 -> 1.86 MB of text, 1,784 -> 1,476 KB
 * resident). The writer uses plain tables alone. Should a later SQLite pull one of those
 * objects in for another of its symbols, the link fails on the duplicate definition: it
 * cannot silently use these. */
#include <sqlite3.h>

int sqlite3Fts3Init(sqlite3 *db);
int sqlite3Fts5Init(sqlite3 *db);
int sqlite3RtreeInit(sqlite3 *db);
int sqlite3DbstatRegister(sqlite3 *db);
int sqlite3StmtVtabInit(sqlite3 *db);

int sqlite3Fts3Init(sqlite3 *db) { return (void)db, SQLITE_OK; }
int sqlite3Fts5Init(sqlite3 *db) { return (void)db, SQLITE_OK; }
int sqlite3RtreeInit(sqlite3 *db) { return (void)db, SQLITE_OK; }
int sqlite3DbstatRegister(sqlite3 *db) { return (void)db, SQLITE_OK; }
int sqlite3StmtVtabInit(sqlite3 *db) { return (void)db, SQLITE_OK; }
