/* memprof's own file descriptors (fds.h). */
#define _GNU_SOURCE
#include "fds.h"
#include "mp.h"
#include "real.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FDS_SLOTS 64

static int fds_base = -1;
static _Atomic uint64_t fds_mask; /* bit i: fds_base + i is memprof's */
static int fds_err = STDERR_FILENO;
static pid_t fds_err_pid; /* the process fds_err is open in */
static pid_t fds_pid;     /* the process fds_mask is about (not a vfork child sharing it) */

void fds_init(void)
{
	if (fds_base >= 0)
		return;
	struct rlimit rl;
	long soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : 1024;
	/* below the limit, so that they can be made at all; not higher than 960 (a high
	 * number costs the kernel a descriptor table that large) */
	long base = soft >= 1024 ? 960 : soft - (soft / 2 < 32 ? soft / 2 : 32);
	fds_base = base > 3 ? (int)base : 3;
	fds_pid = getpid();
}

void fds_keep_stderr(void)
{
	/* the copy costs a descriptor: not where they are counted in units. Not one of the
	 * kept ones: a program that closes its descriptors closes it too (a daemon must not
	 * hold its caller's pipe open), and memprof's messages stop there */
	if (fds_base < 64 || fcntl(STDERR_FILENO, F_GETFD) < 0)
		return;
	int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, fds_base);
	if (fd >= 0) {
		fds_err = fd;
		fds_err_pid = getpid();
	}
}

void fds_fork_child(void)
{
	fds_err_pid = fds_pid = getpid();
}

static int fds_real_close(int fd)
{
	return real.close ? real.close(fd) : (int)syscall(SYS_close, fd);
}

/* The program closes fds first..last: the copy of stderr among them is gone. */
static void fds_closing(unsigned first, unsigned last)
{
	/* Not in a child that shares the parent's memory but not its descriptors (vfork,
	 * posix_spawn: subprocess's child closing every descriptor before its exec): the
	 * parent's copy stays open, and fds_err is the parent's. */
	if (fds_err > STDERR_FILENO && (unsigned)fds_err >= first && (unsigned)fds_err <= last &&
	    getpid() == fds_err_pid)
		fds_err = -1;
}

int fds_take(int fd)
{
	if (fd < 0 || fds_base < 0)
		return fd;
	int nfd = fd;
	if (fd < fds_base || fd >= fds_base + FDS_SLOTS) {
		nfd = fcntl(fd, F_DUPFD_CLOEXEC, fds_base);
		if (nfd < 0 || nfd >= fds_base + FDS_SLOTS) {
			if (nfd >= 0)
				fds_real_close(nfd);
			return fd;
		}
		fds_real_close(fd);
	}
	atomic_fetch_or(&fds_mask, 1ull << (nfd - fds_base));
	return nfd;
}

bool fds_ours(int fd)
{
	return fd >= fds_base && fd < fds_base + FDS_SLOTS && fds_base >= 0 &&
	       (atomic_load_explicit(&fds_mask, memory_order_relaxed) >> (fd - fds_base) & 1);
}

void fds_release(int fd)
{
	if (fds_ours(fd))
		atomic_fetch_and(&fds_mask, ~(1ull << (fd - fds_base)));
}

int fds_stderr(void)
{
	return fds_err;
}

/* ---- the hooks ---------------------------------------------------------------------------- */

static int fds_real_close_range(unsigned first, unsigned last, int flags)
{
	return real.close_range ? real.close_range(first, last, flags)
				: (int)syscall(SYS_close_range, first, last, (unsigned)flags);
}

MP_EXPORT int close(int fd)
{
	if (fd >= 0)
		fds_closing((unsigned)fd, (unsigned)fd);
	if (mp_unlikely(fds_ours(fd))) {
		if (!mp_guard)
			return 0; /* the program's: memprof's stays open */
		fds_release(fd);
	}
	return fds_real_close(fd);
}

/* close_range/closefrom of a range that holds memprof's descriptors: the parts around
 * them. A failure of one part is the call's failure. */
static int fds_close_around(unsigned first, unsigned last, int flags, bool to_end)
{
	int rc = 0;
	unsigned lo = first;
	for (int fd = fds_base > (int)first ? fds_base : (int)first; fd < fds_base + FDS_SLOTS && (unsigned)fd <= last;
	     fd++) {
		if (!fds_ours(fd))
			continue;
		if ((unsigned)fd > lo && fds_real_close_range(lo, (unsigned)fd - 1, flags) != 0)
			rc = -1;
		lo = (unsigned)fd + 1;
	}
	if (lo <= last) {
		if (to_end && real.closefrom)
			real.closefrom((int)lo);
		else if (fds_real_close_range(lo, last, flags) != 0)
			rc = -1;
	}
	return rc;
}

MP_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	if (!real.close)
		real_init();
	if (!mp_guard && !(flags & CLOSE_RANGE_CLOEXEC))
		fds_closing(first, last);
	if (mp_guard || (flags & CLOSE_RANGE_CLOEXEC) || first > last || fds_base < 0 || last < (unsigned)fds_base ||
	    first >= (unsigned)(fds_base + FDS_SLOTS) || !atomic_load(&fds_mask))
		return fds_real_close_range(first, last, flags);
	return fds_close_around(first, last, flags, false);
}

MP_EXPORT void closefrom(int lowfd)
{
	if (!real.close)
		real_init();
	if (lowfd < 0)
		lowfd = 0;
	if (!mp_guard)
		fds_closing((unsigned)lowfd, ~0u);
	if (mp_guard || fds_base < 0 || lowfd >= fds_base + FDS_SLOTS || !atomic_load(&fds_mask)) {
		if (real.closefrom)
			real.closefrom(lowfd);
		else
			fds_real_close_range((unsigned)lowfd, ~0u, 0);
		return;
	}
	fds_close_around((unsigned)lowfd, ~0u, 0, true);
}

/* libunwind's pipe (it checks that memory is readable by writing it there), made while
 * memprof runs: moved up with the others. */
MP_EXPORT int pipe2(int fd[2], int flags)
{
	if (!real.pipe2)
		real_init();
	int rc = real.pipe2 ? real.pipe2(fd, flags) : (int)syscall(SYS_pipe2, fd, flags);
	if (rc == 0 && mp_guard) {
		fd[0] = fds_take(fd[0]);
		fd[1] = fds_take(fd[1]);
	}
	return rc;
}

MP_EXPORT int pipe(int fd[2])
{
	return pipe2(fd, 0);
}

/* dup2/dup3 onto one of memprof's descriptors: the program's file is to take that
 * number. The copy of stderr moves to another. The others (the profile with SQLite's
 * -wal and -shm, /proc/self/statm, libunwind's pipe) cannot move while SQLite and
 * libunwind hold their numbers: recording stops there (said on stderr and in the file),
 * memprof writes everything and closes them all first, so that nothing of memprof's ever
 * lands in the program's file. */
static bool fds_make_room(int fd)
{
	if (fd == fds_err && getpid() == fds_err_pid) {
		int nfd = fcntl(fd, F_DUPFD_CLOEXEC, fds_base);
		fds_err = nfd >= 0 && nfd != fd ? nfd : -1;
		if (!fds_ours(fd))
			return true;
	}
	/* a vfork child shares fds_mask with its parent, not its descriptors: its dup2
	 * changes its own table only */
	if (!fds_ours(fd) || getpid() != fds_pid)
		return true;
	/* (in a process whose file memprof does not write, such as a fork child it does not
	 * follow, the descriptors are copies it does not use: closed, nothing said) */
	if (writer_records_here()) {
		mp_fail("the program put a file of its own at descriptor %d, one of memprof's (dup2)", fd);
		writer_final_flush();
		/* a writer that did not finish (it waits on a lock this thread holds?) still
		 * uses them: the call fails as a dup2 racing an open does, rather than let
		 * its writes land in the program's file */
		if (writer_alive())
			return false;
	}
	mp_guard++;
	for (int i = 0; i < FDS_SLOTS; i++)
		if (fds_ours(fds_base + i)) {
			fds_real_close(fds_base + i);
			fds_release(fds_base + i);
		}
	mp_guard--;
	return true;
}

/* Before the program's dup2/dup3 of oldfd onto newfd: false (errno EBUSY) when newfd
 * cannot be made free for it. */
static bool fds_before_dup(int oldfd, int newfd)
{
	if (mp_guard || newfd < 0 || newfd == oldfd || fcntl(oldfd, F_GETFD) < 0 || fds_make_room(newfd))
		return true;
	errno = EBUSY;
	return false;
}

MP_EXPORT int dup2(int oldfd, int newfd)
{
	if (!real.dup2)
		real_init();
	if (!fds_before_dup(oldfd, newfd))
		return -1;
	return real.dup2 ? real.dup2(oldfd, newfd) : (int)syscall(SYS_dup2, oldfd, newfd);
}

MP_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	if (!real.dup3)
		real_init();
	if (!fds_before_dup(oldfd, newfd))
		return -1;
	return real.dup3 ? real.dup3(oldfd, newfd, flags) : (int)syscall(SYS_dup3, oldfd, newfd, flags);
}
