/* A native program that loads a plugin (argv[1]) with RTLD_LOCAL, the default: the
 * plugin's libpython is in its own scope alone, not in the global one. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: embedhost PLUGIN\n");
		return 2;
	}
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	int (*run)(void) = (int (*)(void))dlsym(h, "plugin_run");
	int rc = run ? run() : -1;
	printf("done %d\n", rc);
	return 0;
}
