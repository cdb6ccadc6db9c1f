/* Built without Python headers: no CPython support, native capture only. */
#include "python.h"
#include "mp.h"

#include <dlfcn.h>

bool python_active;
bool python_scheduled = true;

bool python_present(void)
{
	return dlsym(RTLD_DEFAULT, "Py_GetVersion") != NULL;
}

int python_attach(bool mixed)
{
	mp_log("this build of memprof has no CPython support; Python allocations are not attributed");
	return -1;
}

static uint32_t python_no_stack(mp_thread_t *t, bool gil, bool native, uintptr_t ra, uintptr_t fp) { return 0; }
uint32_t (*python_stack_fn)(mp_thread_t *, bool, bool, uintptr_t, uintptr_t) = python_no_stack;
void python_maybe_schedule(bool recheck) {}
pycode_rec_t *python_take_new_code(void) { return NULL; }
void python_code_rec_free(pycode_rec_t *r) {}
const char *python_version(void) { return NULL; }
void python_fork_child(void) {}
