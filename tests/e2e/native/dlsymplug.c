/* A plugin the dlsym program loads RTLD_LOCAL: dlsym(RTLD_DEFAULT) from here searches
 * this plugin's own scope too (glibc looks from the caller's object), where its
 * dependency's dep_value is. */
#define _GNU_SOURCE
#include <dlfcn.h>

int dep_value(void);
int plug_probe(void);
int plug_direct(void);

/* (a direct use too, so that the link keeps the dependency) */
int plug_direct(void)
{
	return dep_value();
}

int plug_probe(void)
{
	int (*f)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "dep_value");
	return f ? f() : -1;
}
