/* /proc/cpuinfo's flags (see cpu.h). */
#include "cpu.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int cpu_flag(const char *cpuinfo, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = cpuinfo; (p = strstr(p, name)); p += n)
		if (p > cpuinfo && p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return 1;
	return 0;
}

const char *cpu_info(void)
{
	static char buf[8192];
	static int done;
	if (!done) {
		done = 1;
		int fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = 0;
	}
	return buf;
}
