/* libmemprof.so's start-up code, given back once the program runs.
 *
 * Of the library's ~1.4 MiB of code, about a fifth runs while a program is profiled (the
 * hooks and the capture, the writer, the SQLite paths of its inserts and commits,
 * memprof's jemalloc arena); start-up runs much more of it (SQLite's parser and code
 * generator for the schema and the statements, jemalloc's initialization). The kernel
 * maps a file's pages 64 KiB around each one touched, so code that runs now and then
 * anywhere kept nearly all of it resident: 1,276 KiB in py_threads, whose own peak is
 * 9.5 MB. hotcode.ld gathers what runs after start-up into one section; the rest, once
 * the program runs, is dropped from the process's page tables (MADV_DONTNEED: the code
 * pages are the file's, unchanged, read in again from the page cache if they run
 * again). The drop is repeated every HOTCODE_EVERY_NS, for code that a rare path (a
 * fork, a new module's build id) brought back.
 *
 * Not while the process is traced: a debugger's breakpoints are written into the pages
 * (private copies), which the drop would discard. */
#define _GNU_SOURCE
#include "hotcode.h"
#include "fds.h"

#include <fcntl.h>
#include <link.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HOTCODE_EVERY_NS 2000000000ull

/* hotcode.ld's bounds of the section */
extern const char memprof_hot_start[], memprof_hot_end[];

static uint64_t hotcode_next;
static uintptr_t hotcode_hi; /* the end of the executable segment */
static bool hotcode_looked;

static int hotcode_find(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	uintptr_t me = (uintptr_t)memprof_hot_start;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (me >= lo && me < hi) {
			hotcode_hi = hi;
			return 1;
		}
	}
	return 0;
}

/* Whether a debugger (or strace, or anything else) traces the process: TracerPid in
 * /proc/self/status, kept open among memprof's descriptors (fds.h), so that a program
 * closing or reusing descriptors never has one of its own read or closed here. */
static int hotcode_status_fd = -1;

static bool hotcode_traced(void)
{
	if (hotcode_status_fd < 0)
		hotcode_status_fd = fds_take(open("/proc/self/status", O_RDONLY | O_CLOEXEC));
	char buf[2048];
	ssize_t n = hotcode_status_fd < 0 ? -1 : pread(hotcode_status_fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return true;
	buf[n] = 0;
	const char *t = strstr(buf, "\nTracerPid:");
	return !t || strtol(t + sizeof "\nTracerPid:" - 1, NULL, 10) != 0;
}

/* Drops the whole pages of [lo, hi) from the page tables (a system call of its own:
 * memprof's hooks never see it). */
static void hotcode_drop_range(uintptr_t lo, uintptr_t hi)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	lo = (lo + pg - 1) & ~(pg - 1);
	hi &= ~(pg - 1);
	if (hi > lo)
		syscall(SYS_madvise, (void *)lo, hi - lo, MADV_DONTNEED);
}

void hotcode_tick(uint64_t now)
{
	if (now < hotcode_next)
		return;
	hotcode_next = now + HOTCODE_EVERY_NS;
	if (!hotcode_looked) {
		hotcode_looked = true;
		dl_iterate_phdr(hotcode_find, NULL);
	}
	if (!hotcode_hi || (uintptr_t)memprof_hot_end <= (uintptr_t)memprof_hot_start || hotcode_traced())
		return;
	/* what precedes the section is the PLT, which runs all the time, and .init */
	hotcode_drop_range((uintptr_t)memprof_hot_end, hotcode_hi);
}

void hotcode_fork_child(void)
{
	hotcode_next = 0;
	/* the parent's /proc/self, opened as its own: the child opens its own */
	if (hotcode_status_fd >= 0) {
		fds_release(hotcode_status_fd);
		close(hotcode_status_fd);
		hotcode_status_fd = -1;
	}
}
