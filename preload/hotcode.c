/* libmemprof.so's start-up code and read-only pages, given back once the program runs.
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
 * again). So are the library's read-only segments (the dynamic linker's relocations and
 * symbols, read at load and at symbol look-ups; constants; unwind tables): whatever is
 * read again comes back (py_threads: 76 -> 4 KiB for the first, none from the one after
 * the code, whose constants are in use). The drop is repeated every HOTCODE_EVERY_NS,
 * for what a rare path (a fork, a new module's build id) brought back.
 *
 * Pages that are no longer the file's (a debugger's breakpoints, code patched in place,
 * uprobes) are left as they are (hotcode_drop_range). */
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
/* The pages to drop: the library's that are never written (its code and read-only
 * segments, not the part of the writable segment made read-only after relocation, whose
 * pages are copies), the hot section cut out, and likewise those of the libraries that
 * memprof alone brings into a Python program (hotcode_deps): [lo, hi) ranges. */
#define HOTCODE_RANGES 24
static struct {
	uintptr_t lo, hi;
} hotcode_ranges[HOTCODE_RANGES];
static unsigned hotcode_n;
static bool hotcode_looked;

/* libmemprof.so's dependencies (and libunwind's liblzma) besides libc and libm: most
 * programs do not use them, and they run little (libgcc_s, liblzma) or nothing (libunwind
 * in Python mode) after start-up. In py_threads: liblzma 88 -> 12 KiB, libgcc_s 100 -> 16,
 * libunwind 20 -> 12; libzstd's compressor, in use, comes back (384 -> 368). A program
 * that uses one of them itself has its pages read in again as it needs them. */
static const char *const hotcode_deps[] = {"libzstd.so.1", "libunwind.so.8", "liblzma.so.5", "libgcc_s.so.1"};

static void hotcode_add(uintptr_t lo, uintptr_t hi)
{
	if (hi > lo && hotcode_n < HOTCODE_RANGES)
		hotcode_ranges[hotcode_n++] = (typeof(hotcode_ranges[0])){lo, hi};
}

static bool hotcode_is_dep(const char *path)
{
	const char *base = path ? strrchr(path, '/') : NULL;
	base = base ? base + 1 : path;
	for (size_t i = 0; base && i < sizeof hotcode_deps / sizeof hotcode_deps[0]; i++)
		if (!strcmp(base, hotcode_deps[i]))
			return true;
	return false;
}

static int hotcode_find(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	uintptr_t hs = (uintptr_t)memprof_hot_start, he = (uintptr_t)memprof_hot_end;
	bool mine = false;
	for (int i = 0; i < info->dlpi_phnum && !mine; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		mine = ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && hs >= lo && hs < lo + ph->p_memsz;
	}
	if (!mine && !hotcode_is_dep(info->dlpi_name))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W))
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_filesz;
		if (mine && hs >= lo && hs < hi) {
			/* what precedes the section is the PLT, which runs all the time, and .init */
			hotcode_add(he, hi);
		} else {
			hotcode_add(lo, hi);
		}
	}
	return 0;
}

/* Only pages that are still the file's are dropped: /proc/self/pagemap tells, for each
 * page, whether it is present and whether it is a file page (bit 61) rather than
 * anonymous memory. A page a debugger wrote a breakpoint into, a function hooked in
 * place (funchook, Frida), a uprobe, or a segment remapped onto anonymous memory (as
 * large-page remappers do) is a private copy, which MADV_DONTNEED would discard (the
 * code read again from the file, or zeros): such pages are left alone. The descriptor
 * is opened once among memprof's (fds.h) and read with pread; a fork's child opens its
 * own (its /proc/self is another process's). */
#define HOTCODE_PM_PRESENT (1ull << 63)
#define HOTCODE_PM_FILE (1ull << 61)
#define HOTCODE_PM_BATCH 512 /* pages read at a time */
static int hotcode_pagemap = -1;
static const char hotcode_pagemap_path[] = "/proc/self/pagemap";

/* Drops the runs of file pages within the whole pages of [lo, hi) (system calls of
 * their own: memprof's hooks never see them). */
static void hotcode_drop_range(uintptr_t lo, uintptr_t hi)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	lo = (lo + pg - 1) & ~(pg - 1);
	hi &= ~(pg - 1);
	uint64_t pm[HOTCODE_PM_BATCH];
	while (lo < hi) {
		size_t n = (hi - lo) / pg;
		if (n > HOTCODE_PM_BATCH)
			n = HOTCODE_PM_BATCH;
		ssize_t got = pread(hotcode_pagemap, pm, n * sizeof pm[0], (off_t)(lo / pg * sizeof pm[0]));
		if (got < (ssize_t)sizeof pm[0])
			return;
		n = (size_t)got / sizeof pm[0];
		for (size_t i = 0; i < n;) {
			size_t j = i;
			while (j < n && (pm[j] & (HOTCODE_PM_PRESENT | HOTCODE_PM_FILE)) == (HOTCODE_PM_PRESENT | HOTCODE_PM_FILE))
				j++;
			if (j > i)
				syscall(SYS_madvise, (void *)(lo + i * pg), (j - i) * pg, MADV_DONTNEED);
			i = j + 1;
		}
		lo += n * pg;
	}
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
	if (hotcode_pagemap >= 0 && !fds_intact(hotcode_pagemap)) {
		/* closed behind memprof's back (fds.h): its number is not memprof's any more */
		fds_release(hotcode_pagemap);
		hotcode_pagemap = -1;
	}
	if (hotcode_n && hotcode_pagemap < 0)
		hotcode_pagemap = fds_take(open(hotcode_pagemap_path, O_RDONLY | O_CLOEXEC), hotcode_pagemap_path);
	if (hotcode_pagemap < 0)
		return;
	for (unsigned i = 0; i < hotcode_n; i++)
		hotcode_drop_range(hotcode_ranges[i].lo, hotcode_ranges[i].hi);
}

void hotcode_stop(void)
{
	hotcode_n = 0;
	if (hotcode_pagemap >= 0)
		fds_give_back(hotcode_pagemap);
	hotcode_pagemap = -1;
}

void hotcode_fork_child(void)
{
	hotcode_next = 0;
	hotcode_n = 0; /* (looked for again: the parent may have stopped) */
	hotcode_looked = false;
	if (hotcode_pagemap >= 0) {
		fds_release(hotcode_pagemap);
		close(hotcode_pagemap);
		hotcode_pagemap = -1;
	}
}
