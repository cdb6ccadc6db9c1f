/* Descriptors: fds MODE allocates at known lines, closes every descriptor from 3 on
 * (MODE: `loop` close() on each up to 4095, `range` close_range(3, ~0U, 0), `from`
 * closefrom(3)), opens 12 files and writes a line to each, says which number the first
 * got and how many numbers below it are open once the files are written, allocates
 * again and exits 0. memprof's own descriptors must survive all three,
 * and the program must get the numbers it gets without memprof. `fds dup2` instead puts a
 * file of its own on every number from 900 to 1023 (memprof's among them) with dup2,
 * writes a line through 1000, allocates again and exits 0.
 * `raw` closes every descriptor from 3 on as `range` does, with the system call itself
 * (syscall(SYS_close_range, ...)), which memprof does not see. `rawloop` allocates
 * 100,000 blocks of 100 bytes at a known line in 50 rounds, closing every descriptor from
 * 3 on that way after each round, and exits 0. `rawtake` allocates, waits 150 ms (a
 * commit), opens t.txt and puts it on every other number up to its limit of descriptors
 * (memprof's among them) with the system call dup3 itself (no number it has reached is
 * free at any moment, as it would be between a close and an open, for memprof to open
 * its files again on: what happens is the same in every run), allocates again, waits 150 ms, says
 * whether t.txt is still empty, puts its first file on its last number with dup2,
 * closes them all, says how many were open after each and exits 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *volatile sink;

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "loop";
	for (int i = 0; i < 10; i++)
		sink = malloc(1000); /* @BEFORE */
	if (!strcmp(mode, "dup2")) {
		int fd = open("d.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		for (int n = 900; n < 1024; n++)
			if (fd < 0 || dup2(fd, n) != n)
				return 1;
		if (write(1000, "program data\n", 13) != 13)
			return 1;
		for (int i = 0; i < 10; i++)
			sink = malloc(2000);
		for (int n = 900; n < 1024; n++)
			close(n);
		return close(fd);
	}
	if (!strcmp(mode, "rawloop")) {
		for (int round = 0; round < 50; round++) {
			for (int i = 0; i < 2000; i++) {
				sink = malloc(100); /* @LOOP */
				free(sink);
			}
			syscall(SYS_close_range, 3u, ~0u, 0u);
			if (round % 10 == 9)
				usleep(30000);
		}
		printf("rounds 50\n");
		return 0;
	}
	if (!strcmp(mode, "rawtake")) {
		usleep(150000);
		int fd, first = open("t.txt", O_RDWR | O_CREAT | O_APPEND, 0644), n = 1, last = first;
		if (first < 0)
			return 1;
		for (fd = first + 1;; fd++) {
			long r;
			/* (EBUSY: an open of memprof's, reopening a file the loop replaced, holds
			 * that number for a moment) */
			while ((r = syscall(SYS_dup3, first, fd, 0)) < 0 && errno == EBUSY)
				;
			if (r != fd)
				break;
			n++;
			last = fd;
		}
		for (int i = 0; i < 3; i++)
			sink = malloc(1 << 20); /* @TAKEN */
		usleep(150000);
		struct stat st;
		printf("%s\n", n > 50 && stat("t.txt", &st) == 0 && st.st_size == 0 ? "untouched" : "touched");
		/* its files are its own: a dup2 onto the last closes that one alone, and
		 * close() closes each */
		int open_after_dup2 = 0, open_after_close = 0;
		if (dup2(3, last) != last)
			return 1;
		for (fd = 3; fd <= last; fd++)
			open_after_dup2 += fcntl(fd, F_GETFD) >= 0;
		for (fd = 3; fd <= last; fd++)
			close(fd);
		for (fd = 3; fd <= last; fd++)
			open_after_close += fcntl(fd, F_GETFD) >= 0;
		printf("open after dup2 %d of %d, after close %d\n", open_after_dup2, n, open_after_close);
		return 0;
	}
	if (!strcmp(mode, "raw"))
		syscall(SYS_close_range, 3u, ~0u, 0u);
	else if (!strcmp(mode, "range"))
		close_range(3, ~0u, 0);
	else if (!strcmp(mode, "from"))
		closefrom(3);
	else
		for (int fd = 3; fd < 4096; fd++)
			close(fd);
	int fds[12];
	for (int i = 0; i < 12; i++) {
		char name[32];
		snprintf(name, sizeof name, "f%02d.txt", i);
		fds[i] = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fds[i] < 0 || write(fds[i], "program data\n", 13) != 13)
			return 1;
	}
	int below = 0; /* numbers under the first file's that are open by now */
	for (int fd = 3; fd < fds[0]; fd++)
		below += fcntl(fd, F_GETFD) >= 0;
	printf("first fd %d, %d open below it\n", fds[0], below);
	for (int i = 0; i < 10; i++)
		sink = malloc(2000); /* @AFTER */
	for (int i = 0; i < 12; i++)
		close(fds[i]);
	return 0;
}
