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
/* fd moved up (the original closed) and marked memprof's; fd itself if it cannot be;
 * -1 (errno EBADF) if the program closed it first, or, given the `path` the caller
 * opened, when fd is not that file by the time it is moved (the program closed it and
 * opened one of its own there, which is left as it is). */
int fds_take(int fd, const char *path);
/* Whether fd is one of memprof's (a hint: the hooks of close ask it); not one the
 * program's file took (fds_intact). */
bool fds_ours(int fd);
/* memprof closes one of its own, or forgets one that is no longer its own (fds_intact:
 * not closed then). */
void fds_release(int fd);
/* memprof gives back fd, a descriptor of its own it no longer needs: closed if it is
 * marked memprof's (by memprof's close, under the guard); one fds_take could not move up
 * is not marked, and may be the program's number by now: left open. */
void fds_give_back(int fd);
/* A system call memprof does not see (syscall(SYS_close_range, ...)) may close memprof's
 * descriptors behind its back, and the program's next open take a number. False when fd
 * is one of memprof's and no longer the file it was. */
bool fds_intact(int fd);
/* Whether `path` still names the file fd, one of memprof's, was opened as. */
bool fds_named(int fd, const char *path);
/* Opens `path` (the file fd was: the same device and inode) again on fd's number, which
 * must be free (closed behind memprof's back): true when fd is that file again (or still
 * was); false when it cannot be (the number or the file taken by the program). */
bool fds_reopen(int fd, const char *path, int flags);
/* In a process memprof records: a copy of stderr for its messages, which reach the
 * program's stderr even after it closed fd 2 and opened a file there. */
void fds_keep_stderr(void);
/* In a forked child: the copy of stderr is the child's too. */
void fds_fork_child(void);
/* memprof's stderr for its messages (-1: none). */
int fds_stderr(void);

#endif
