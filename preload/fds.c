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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FDS_SLOTS 64

static int fds_base = -1;
static _Atomic uint64_t fds_mask; /* bit i: fds_base + i is memprof's */
/* What file each of memprof's descriptors is (fds_intact): a system call memprof does
 * not see (syscall(SYS_close_range, ...), syscall(SYS_close, ...)) can close one, and
 * the program's next open may then get its number. */
typedef struct fds_ident {
	dev_t dev;
	ino_t ino;
} fds_ident_t;
static fds_ident_t fds_id[FDS_SLOTS];
static int fds_err = STDERR_FILENO;
static fds_ident_t fds_err_id; /* the file fds_err is a copy of */
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
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0) {
		fds_err_id = (fds_ident_t){st.st_dev, st.st_ino};
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
		/* not on the number of one of memprof's that was closed behind its back, which
		 * its owner opens again there (fds_reopen): such a number is held meanwhile */
		int held[FDS_SLOTS], nheld = 0;
		int err = 0;
		for (int from = fds_base;; from = nfd + 1) {
			nfd = fcntl(fd, F_DUPFD_CLOEXEC, from);
			err = errno;
			if (nfd < 0 || nfd >= fds_base + FDS_SLOTS || !fds_ours(nfd) || nheld == FDS_SLOTS)
				break;
			held[nheld++] = nfd;
		}
		while (nheld)
			fds_real_close(held[--nheld]);
		if (nfd < 0 && err == EBADF) {
			errno = EBADF;
			return -1; /* closed by the program already (a loop of raw close_range) */
		}
		if (nfd < 0 || nfd >= fds_base + FDS_SLOTS || fds_ours(nfd)) {
			if (nfd >= 0 && !fds_ours(nfd))
				fds_real_close(nfd);
			return fd;
		}
	}
	/* what file it is, asked of the copy or else of the original (the program may have
	 * closed either meanwhile) */
	struct stat st;
	if (fstat(nfd, &st) != 0 && fstat(fd, &st) != 0) {
		errno = EBADF; /* both closed by the program */
		return -1;
	}
	if (nfd != fd)
		fds_real_close(fd);
	fds_id[nfd - fds_base] = (fds_ident_t){st.st_dev, st.st_ino};
	atomic_fetch_or(&fds_mask, 1ull << (nfd - fds_base));
	return nfd;
}

static bool fds_same(const struct stat *st, const fds_ident_t *id)
{
	return st->st_dev == id->dev && st->st_ino == id->ino;
}

bool fds_intact(int fd)
{
	struct stat st;
	return !fds_ours(fd) || (fstat(fd, &st) == 0 && fds_same(&st, &fds_id[fd - fds_base]));
}

bool fds_reopen(int fd, const char *path, int flags)
{
	struct stat st;
	if (!fds_ours(fd))
		return false;
	if (fstat(fd, &st) == 0 || errno != EBADF)
		return fds_same(&st, &fds_id[fd - fds_base]); /* intact, or the program's now */
	/* The file is opened at the lowest free number, where the program may close it too
	 * (a loop of raw close_range) and open a file of its own: a number that is not the
	 * file memprof wants is never closed here, and a copy the program closed is opened
	 * again; so is one that did not land on fd (held for a moment by fds_take). */
	const fds_ident_t *want = &fds_id[fd - fds_base];
	for (int tries = 0; tries < 100; tries++) {
		if (tries && (fstat(fd, &st) == 0 || errno != EBADF))
			return fds_same(&st, want);
		int tmp = open(path, (flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC);
		if (tmp < 0)
			return false;
		if (fstat(tmp, &st) != 0)
			continue; /* closed by the program already */
		if (!fds_same(&st, want))
			return false; /* the name is another file's now (or tmp the program's) */
		int got = fcntl(tmp, F_DUPFD_CLOEXEC, fd); /* the lowest free number from fd on */
		if (fstat(tmp, &st) == 0 && fds_same(&st, want))
			fds_real_close(tmp);
		if (got == fd)
			return true;
		if (got >= 0) /* fd was taken meanwhile: got is a copy of memprof's */
			fds_real_close(got);
	}
	return false;
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
	/* a copy closed by a system call memprof does not see, its number maybe the
	 * program's file now: stderr itself, if it is still the same file */
	struct stat st;
	if (fds_err > STDERR_FILENO && (fstat(fds_err, &st) != 0 || !fds_same(&st, &fds_err_id)))
		fds_err = fstat(STDERR_FILENO, &st) == 0 && fds_same(&st, &fds_err_id) ? STDERR_FILENO : -1;
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
		bool intact = fds_intact(fd);
		fds_release(fd);
		if (!intact) /* closed behind memprof's back: the number may be the program's now */
			return 0;
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
