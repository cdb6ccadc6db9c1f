/* Descriptors: fds MODE allocates at known lines, closes every descriptor from 3 on
 * (MODE: `loop` close() on each up to 4095, `range` close_range(3, ~0U, 0), `from`
 * closefrom(3)), opens 12 files and writes a line to each, says which number the first
 * got, allocates again and exits 0. memprof's own descriptors must survive all three,
 * and the program must get the numbers it gets without memprof. `fds dup2` instead puts a
 * file of its own on every number from 900 to 1023 (memprof's among them) with dup2,
 * writes a line through 1000, allocates again and exits 0. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	if (!strcmp(mode, "range"))
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
	printf("first fd %d\n", fds[0]);
	for (int i = 0; i < 10; i++)
		sink = malloc(2000); /* @AFTER */
	for (int i = 0; i < 12; i++)
		close(fds[i]);
	return 0;
}
