/* libmemprof_fini.so: the last word of libmemprof.so at exit.
 *
 * At exit the loader runs the destructors of the objects it loaded at start-up in an
 * order where a preloaded library such as libmemprof.so comes before the program's own
 * libraries: a library's destructor that frees (or allocates) ran after memprof had
 * written its file, and its blocks read as live at exit. An object loaded later by
 * dlopen is finalized after those: libmemprof.so loads this one from its constructor and
 * hands it the function that writes everything (memprof_fini_set), which its destructor
 * calls. Nothing else is in here. */
#define MP_FINI_EXPORT __attribute__((visibility("default")))

static void (*fini_fn)(void);

MP_FINI_EXPORT void memprof_fini_set(void (*fn)(void));

void memprof_fini_set(void (*fn)(void))
{
	fini_fn = fn;
}

__attribute__((destructor)) static void fini_run(void)
{
	if (fini_fn)
		fini_fn();
}
