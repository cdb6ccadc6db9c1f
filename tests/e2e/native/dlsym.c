/* dlsym [PLUGIN]: the allocator functions looked up in libc's own handle (as ctypes'
 * CDLL("libc.so.6") does) are recorded like any call: malloc(100000) kept, calloc(10,
 * 1000) then realloc'd to 50000 kept, 20 strdup'd strings of 1001 bytes (allocated
 * through the program's malloc) freed through libc's free. With PLUGIN (loaded
 * RTLD_LOCAL), prints what the plugin's dlsym(RTLD_DEFAULT, "dep_value") found in its own
 * dependency. Prints whether getpid() is the process's (a preloaded interposer of
 * getpid calls the next one through dlsym(RTLD_NEXT)). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char line[1001];
static char *keep[20];

int main(int argc, char **argv)
{
	void *h = dlopen("libc.so.6", RTLD_NOW);
	void *(*m)(size_t) = (void *(*)(size_t))dlsym(h, "malloc");
	void *(*c)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(h, "calloc");
	void *(*r)(void *, size_t) = (void *(*)(void *, size_t))dlsym(h, "realloc");
	void (*f)(void *) = (void (*)(void *))dlsym(h, "free");
	if (!m || !c || !r || !f) {
		fprintf(stderr, "dlsym: %s\n", dlerror());
		return 1;
	}
	void *a = m(100000); /* @DLMALLOC */
	void *b = c(10, 1000); /* @DLCALLOC */
	b = r(b, 50000); /* @DLREALLOC */
	memset(line, 'x', sizeof line - 1);
	for (int i = 0; i < 20; i++)
		keep[i] = strdup(line); /* @STRDUP */
	for (int i = 0; i < 20; i++)
		f(keep[i]);
	if (argc > 1) {
		void *p = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
		int (*probe)(void) = p ? (int (*)(void))dlsym(p, "plug_probe") : NULL;
		printf("plugin %d\n", probe ? probe() : -2);
	}
	printf("getpid %d\n", getpid() == (pid_t)syscall(SYS_getpid));
	printf("kept %d\n", a != NULL && b != NULL);
	return 0;
}
