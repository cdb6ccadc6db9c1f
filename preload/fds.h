/* memprof's own file descriptors: its file (and SQLite's -wal and -shm beside it), the
 * sampler's /proc/self/statm, libunwind's pipe, a copy of stderr for its messages. They
 * are moved up to numbers programs do not use (a little below the soft RLIMIT_NOFILE,
 * at most 960), where a program that opens files gets the numbers it would get without
 * memprof, and `exec 6>file` in a shell or dup2 onto a low number meets none of them; and
 * a program that closes them (daemons close every descriptor) is told it did, while they
 * stay open: memprof's data never goes to a file of the program's. */
#ifndef MEMPROF_PRELOAD_FDS_H
#define MEMPROF_PRELOAD_FDS_H

#include <stdbool.h>

/* Once, early (the constructor): where memprof's descriptors go, and the copy of stderr. */
void fds_init(void);
/* fd moved up (the original closed) and marked memprof's; fd itself if it cannot be. */
int fds_take(int fd);
/* Whether fd is one of memprof's (a hint: the hooks of close ask it). */
bool fds_ours(int fd);
/* memprof closes one of its own. */
void fds_release(int fd);
/* In a process memprof records: a copy of stderr for its messages, which reach the
 * program's stderr even after it closed fd 2 and opened a file there. */
void fds_keep_stderr(void);
/* In a forked child: the copy of stderr is the child's too. */
void fds_fork_child(void);
/* memprof's stderr for its messages (-1: none). */
int fds_stderr(void);

#endif
