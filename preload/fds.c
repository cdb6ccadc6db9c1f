/* memprof's own file descriptors (fds.h). */
#define _GNU_SOURCE
#include "fds.h"
#include "mp.h"
#include "real.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FDS_SLOTS 64

static int fds_base = -1;
static _Atomic uint64_t fds_mask; /* bit i: fds_base + i is memprof's */
/* Of those, the numbers that are the program's files now (closed behind memprof's back,
 * then opened by the program): never memprof's again, and not kept from the program's
 * close; still marked, so that memprof's code that held one finds it lost (fds_intact)
 * and fds_take never hands it out again. */
static _Atomic uint64_t fds_lost;
/* fds_take's moving and fds_reopen, one at a time: fds_take holds the free numbers of
 * memprof's closed descriptors for a moment, which fds_reopen must not find taken. */
static pthread_mutex_t fds_lock = PTHREAD_MUTEX_INITIALIZER;
/* What file each of memprof's descriptors is (fds_intact): a system call memprof does
 * not see (syscall(SYS_close_range, ...), syscall(SYS_close, ...)) can close one, and
 * the program's next open may then get its number. */
typedef struct fds_ident {
	dev_t dev;
	ino_t ino;
} fds_ident_t;
static fds_ident_t fds_id[FDS_SLOTS];

static fds_ident_t fds_ident_of(const struct stat *st)
{
	return (fds_ident_t){st->st_dev, st->st_ino};
}

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
		fds_err_id = fds_ident_of(&st);
		fds_err = fd;
		fds_err_pid = getpid();
	}
}

void fds_fork_child(void)
{
	pthread_mutex_init(&fds_lock, NULL);
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

static bool fds_same(const struct stat *st, const fds_ident_t *id)
{
	return st->st_dev == id->dev && st->st_ino == id->ino;
}

/* What fd holds: the file `want` (1), another (0), or nothing (-1: closed). The
 * program's closes and opens may change it at any moment. */
static int fds_holds(int fd, const fds_ident_t *want)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -1;
	return fds_same(&st, want);
}

static uint64_t fds_bit(int fd)
{
	return fds_base >= 0 && fd >= fds_base && fd < fds_base + FDS_SLOTS ? 1ull << (fd - fds_base) : 0;
}

/* Marked memprof's, lost or not. */
static bool fds_marked(int fd)
{
	return atomic_load_explicit(&fds_mask, memory_order_relaxed) & fds_bit(fd);
}

bool fds_ours(int fd)
{
	uint64_t b = fds_bit(fd);
	return (atomic_load_explicit(&fds_mask, memory_order_relaxed) & b) &&
	       !(atomic_load_explicit(&fds_lost, memory_order_relaxed) & b);
}

void fds_release(int fd)
{
	uint64_t b = fds_bit(fd);
	if (b) {
		atomic_fetch_and(&fds_mask, ~b);
		atomic_fetch_and(&fds_lost, ~b);
	}
}

void fds_give_back(int fd)
{
	if (fds_ours(fd)) {
		mp_guard_enter();
		close(fd); /* (the hook: memprof's close) */
		mp_unguard();
	}
}

/* fd, one of memprof's, is open on another file: the program's now. */
static void fds_lose(int fd)
{
	atomic_fetch_or(&fds_lost, fds_bit(fd));
}

bool fds_intact(int fd)
{
	return !fds_marked(fd) || (!(atomic_load_explicit(&fds_lost, memory_order_relaxed) & fds_bit(fd)) &&
				   fds_holds(fd, &fds_id[fd - fds_base]) == 1);
}

bool fds_named(int fd, const char *path)
{
	struct stat st;
	return fds_marked(fd) && stat(path, &st) == 0 && fds_same(&st, &fds_id[fd - fds_base]);
}

/* Whether fd, marked memprof's, is still its file; if not, and open, it is the
 * program's now (marked lost). Asked again under fds_take's lock, which may hold the
 * number for a moment. */
static bool fds_keep(int fd)
{
	if (fds_intact(fd))
		return true;
	pthread_mutex_lock(&fds_lock);
	bool intact = fds_intact(fd);
	if (!intact && fcntl(fd, F_GETFD) >= 0)
		fds_lose(fd);
	pthread_mutex_unlock(&fds_lock);
	return intact;
}

int fds_take(int fd, const char *path)
{
	if (fd < 0 || fds_base < 0)
		return fd;
	/* the file the caller opened: the name's, or else what fd is now */
	struct stat st;
	if (path ? stat(path, &st) != 0 : fstat(fd, &st) != 0) {
		errno = EBADF;
		return -1;
	}
	fds_ident_t want = fds_ident_of(&st);
	if (path && fds_holds(fd, &want) != 1) {
		/* closed by the program already (a loop of raw close_range), and perhaps its
		 * file there now: not memprof's to close */
		errno = EBADF;
		return -1;
	}
	int nfd = fd;
	if (fd < fds_base || fd >= fds_base + FDS_SLOTS) {
		/* not on the number of one of memprof's that was closed behind its back, which
		 * its owner opens again there (fds_reopen): such a number is held meanwhile */
		int held[FDS_SLOTS], nheld = 0, err = 0;
		pthread_mutex_lock(&fds_lock);
		for (int from = fds_base;; from = nfd + 1) {
			nfd = fcntl(fd, F_DUPFD_CLOEXEC, from);
			err = errno;
			if (nfd < 0 || nfd >= fds_base + FDS_SLOTS || !fds_marked(nfd) || nheld == FDS_SLOTS)
				break;
			held[nheld++] = nfd;
		}
		while (nheld)
			fds_real_close(held[--nheld]);
		pthread_mutex_unlock(&fds_lock);
		if (nfd < 0 && err == EBADF) {
			errno = EBADF;
			return -1;
		}
		if (nfd < 0 || nfd >= fds_base + FDS_SLOTS || fds_marked(nfd)) {
			if (nfd >= 0 && !fds_marked(nfd))
				fds_real_close(nfd);
			return fd;
		}
		/* the copy is of the file opened (the program may have put one of its own at fd
		 * in between: then the copy goes, and fd is left as it is) */
		if (fds_holds(nfd, &want) != 1) {
			fds_real_close(nfd);
			errno = EBADF;
			return -1;
		}
		if (fds_holds(fd, &want) == 1)
			fds_real_close(fd);
	}
	fds_id[nfd - fds_base] = want;
	atomic_fetch_and(&fds_lost, ~fds_bit(nfd));
	atomic_fetch_or(&fds_mask, fds_bit(nfd));
	return nfd;
}

static bool fds_reopen_locked(int fd, const char *path, int flags)
{
	const fds_ident_t *want = &fds_id[fd - fds_base];
	struct stat st;
	/* The file is opened at the lowest free number, where the program may close it too
	 * (a loop of raw close_range) and open a file of its own: a number that is not the
	 * file memprof opened is never closed here, and a copy the program closed is opened
	 * again. */
	for (int tries = 0; tries < 100; tries++) {
		int at = fds_holds(fd, want);
		if (at >= 0) {
			if (!at)
				fds_lose(fd);
			return at; /* intact, or opened again meanwhile; or the program's */
		}
		if (errno != EBADF)
			return false;
		int tmp = open(path, (flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC);
		if (tmp < 0)
			return false;
		if (fstat(tmp, &st) != 0)
			continue; /* closed by the program already */
		if (!fds_same(&st, want)) {
			fds_ident_t opened = fds_ident_of(&st);
			struct stat named;
			if (stat(path, &named) == 0 && fds_same(&named, &opened)) {
				fds_real_close(tmp); /* the name is another file's now */
				return false;
			}
			continue; /* tmp is the program's by now */
		}
		if (tmp == fd)
			return true; /* the lowest free number was fd itself */
		int got = fcntl(tmp, F_DUPFD_CLOEXEC, fd); /* the lowest free number from fd on */
		if (fds_holds(tmp, want) == 1)
			fds_real_close(tmp);
		if (got == fd)
			return true;
		if (got >= 0) /* fd was taken meanwhile (found at the next try): got is memprof's copy */
			fds_real_close(got);
	}
	return false;
}

bool fds_reopen(int fd, const char *path, int flags)
{
	if (!fds_ours(fd))
		return false;
	pthread_mutex_lock(&fds_lock);
	bool ok = fds_reopen_locked(fd, path, flags);
	pthread_mutex_unlock(&fds_lock);
	return ok;
}

int fds_stderr(void)
{
	/* a copy closed by a system call memprof does not see, its number maybe the
	 * program's file now: stderr itself, if it is still the same file */
	if (fds_err > STDERR_FILENO && fds_holds(fds_err, &fds_err_id) != 1)
		fds_err = fds_holds(STDERR_FILENO, &fds_err_id) == 1 ? STDERR_FILENO : -1;
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
	if (mp_unlikely(fds_marked(fd))) {
		if (!mp_guard) {
			/* the program's close of memprof's: it stays open (one closed behind
			 * memprof's back, fds.h, is the program's to close) */
			if (fds_keep(fd))
				return 0;
		} else {
			if (!fds_intact(fd)) { /* not memprof's file any more: left as it is */
				fds_release(fd);
				return 0;
			}
			/* closed first: a number still marked is one fds_take does not move a
			 * file of memprof's to, and the program's dup2 onto it, finding it
			 * closed, goes on (fds_make_room) */
			int rc = fds_real_close(fd);
			fds_release(fd);
			return rc;
		}
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
		/* one that is the program's file now (closed behind memprof's back, then
		 * opened by it) is marked lost, and closed with the rest */
		if (fds_ours(fd))
			fds_keep(fd);
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
		fd[0] = fds_take(fd[0], NULL);
		fd[1] = fds_take(fd[1], NULL);
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
	 * changes its own table only. One of memprof's that is not its file any more
	 * (closed behind its back) is the program's to replace. */
	if (!fds_ours(fd) || getpid() != fds_pid || !fds_keep(fd))
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
	mp_guard_enter();
	for (int i = 0; i < FDS_SLOTS; i++) {
		int n = fds_base + i;
		if (fds_ours(n) && fds_keep(n)) { /* (not one that is the program's file now) */
			fds_real_close(n);
			fds_release(n);
		}
	}
	mp_unguard();
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
