/* CPython support, what every supported version shares (python.h): attaching to the
 * interpreter and choosing the frame walk compiled for its version (python_walk.c,
 * python_variant.h), the public API calls memprof makes (the atexit callback that marks
 * the end of the main program, re-initialization of an embedded interpreter). */
#define _GNU_SOURCE
#include "python_variant.h"
#include "hooks_pymem.h"
#include "mem.h"
#include "mp.h"
#include "native.h"
#include "record.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool python_active;
bool python_scheduled;
python_api_t python_api;
long python_test_slow_code_us;
uint32_t (*python_stack_fn)(mp_thread_t *t, bool gil, bool native, uintptr_t ra, uintptr_t fp);
void *(*python_alloc_gil)(void *ctx, void *(*malloc_fn)(void *, size_t), void *(*calloc_fn)(void *, size_t, size_t),
			  size_t n, size_t size, int allocator);

/* The walks this build has (meson.build defines MP_PYTHON_3XX for each). */
#ifdef MP_PYTHON_39
extern const python_variant_t python_variant_39;
#endif
#ifdef MP_PYTHON_310
extern const python_variant_t python_variant_310;
#endif
#ifdef MP_PYTHON_311
extern const python_variant_t python_variant_311;
#endif
#ifdef MP_PYTHON_312
extern const python_variant_t python_variant_312;
#endif
#ifdef MP_PYTHON_313
extern const python_variant_t python_variant_313;
#endif
static const python_variant_t *const python_variants[] = {
#ifdef MP_PYTHON_39
	&python_variant_39,
#endif
#ifdef MP_PYTHON_310
	&python_variant_310,
#endif
#ifdef MP_PYTHON_311
	&python_variant_311,
#endif
#ifdef MP_PYTHON_312
	&python_variant_312,
#endif
#ifdef MP_PYTHON_313
	&python_variant_313,
#endif
};
static const python_variant_t *python_variant;
static char python_version_str[32];

pycode_rec_t *python_take_new_code(void)
{
	return python_variant ? python_variant->take_new_code() : NULL;
}

void python_code_rec_free(pycode_rec_t *r)
{
	mem_free(r->filename);
	mem_free(r->name);
	mem_free(r->qualname);
	mem_free(r->linetable);
	mem_free(r);
}

void python_fork_child(void)
{
	if (python_variant)
		python_variant->fork_child();
}

/* ---- end of the main program ------------------------------------------------------- */

static bool python_ended; /* the end of the main program was recorded */

static PyObject *python_atexit_cb(PyObject *self, PyObject *args)
{
	record_end(false);
	python_ended = true;
	/* Py_IncRef, not ob_refcnt++: None is immortal from 3.12 on, its count fixed */
	python_api.IncRef(python_api.None);
	return python_api.None;
}

static PyMethodDef python_atexit_def = {"_memprof_end_of_main", python_atexit_cb, METH_NOARGS,
					 "memprof: marks the end of the main program"};

/* Pending call: runs in the main thread with the GIL at a safe point of the eval loop.
 * Registers the atexit callback that marks the end of the main program, and re-wraps
 * the allocators if start-up replaced them (PYTHONMALLOC, -X dev). */
/* A pending call runs between any two bytecodes, possibly inside importlib's own
 * bookkeeping (_ModuleLock.acquire keeps `_blocking_on[thread id]` only for its
 * duration): importing there would re-enter it and break the program's import. So the
 * atexit module is imported only when this thread is not inside that section; else the
 * call is made again at the next check. */
/* sys.modules[name] or NULL, without importing anything. */
static PyObject *python_get_module(const char *name)
{
	PyObject *n = python_api.UnicodeFromString(name);
	PyObject *m = n ? python_api.GetModule(n) : NULL;
	if (n)
		python_api.DecRef(n);
	return m;
}

static bool python_import_is_safe(void)
{
	PyObject *bs = python_get_module("_frozen_importlib");
	if (!bs) {
		python_api.ErrClear();
		return false;
	}
	/* a dict of the lock a thread waits for in 3.11; from 3.12 on a mapping (a class of
	 * importlib's own, no dict) of the list of those locks, which stays, empty, after */
	PyObject *blocking = python_api.GetAttrString(bs, "_blocking_on");
	PyObject *get = blocking ? python_api.GetAttrString(blocking, "get") : NULL;
	PyObject *tid = get ? python_api.LongFromUnsignedLong(python_api.ThreadIdent()) : NULL;
	PyObject *held = tid ? python_api.CallArgs(get, tid, NULL) : NULL;
	int inside = held ? python_api.IsTrue(held) : -1;
	if (inside < 0)
		python_api.ErrClear();
	if (held)
		python_api.DecRef(held);
	if (tid)
		python_api.DecRef(tid);
	if (get)
		python_api.DecRef(get);
	if (blocking)
		python_api.DecRef(blocking);
	python_api.DecRef(bs);
	return inside == 0;
}

static int python_pending(void *arg)
{
	static bool signals_set;
	mp_guard_enter();
	python_hooks_ensure();
	if (!signals_set) {
		signals_set = true;
		init_signals();
	}
	PyObject *mod = python_get_module("atexit"); /* already imported: no Python code runs */
	if (!mod) {
		python_api.ErrClear();
		if (!python_import_is_safe()) {
			python_api.AddPendingCall(python_pending, NULL);
			mp_unguard();
			return 0;
		}
		mod = python_api.ImportModule("atexit");
	}
	PyObject *reg = mod ? python_api.GetAttrString(mod, "register") : NULL;
	PyObject *fn = reg ? python_api.CFunctionNewEx(&python_atexit_def, NULL, NULL) : NULL;
	PyObject *r = fn ? python_api.CallArgs(reg, fn, NULL) : NULL;
	if (!r)
		python_api.ErrClear();
	if (r)
		python_api.DecRef(r);
	if (fn)
		python_api.DecRef(fn);
	if (reg)
		python_api.DecRef(reg);
	if (mod)
		python_api.DecRef(mod);
	mp_unguard();
	return 0;
}

void python_maybe_schedule(bool recheck)
{
	if (python_scheduled)
		return;
	if (!python_api.IsInitialized()) {
		if (recheck)
			python_hooks_recheck();
		return;
	}
	python_scheduled = true;
	int saved = errno;
	mp_guard_enter();
	python_api.AddPendingCall(python_pending, NULL);
	mp_unguard();
	errno = saved;
}

/* A program that embeds Python and initializes it again after finalizing it (calls
 * through the PLT; a libpython built without -fno-semantic-interposition, as pyenv's
 * 3.12 is, makes its own Py_Initialize's call of Py_InitializeEx there too): the end
 * recorded at the first finalization is not the end, and the new interpreter needs
 * memprof's atexit callback (python_pending, scheduled again on its first allocation).
 *
 * python_real: the Python library's function, the next definition in the global scope,
 * else (a plugin linked with libpython, loaded with RTLD_LOCAL: libpython is in its scope
 * alone) the one the caller's object sees among its own dependencies; none: the program
 * called a Python function without Python, and ends. A caller in memprof itself is the
 * Python library's tail call from a function memprof forwarded to (its Py_Initialize's
 * of Py_InitializeEx): the library of that function is the one to ask. */
static void *python_real_seen; /* a function python_real found */

static void *python_real(const char *name, void *caller)
{
	void *f = dlsym(RTLD_NEXT, name);
	Dl_info di;
	if (!f && python_real_seen && native_is_self((uint64_t)(uintptr_t)caller))
		caller = python_real_seen;
	if (!f && dladdr(caller, &di) && di.dli_fname) {
		void *h = dlopen(di.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
		void *g = h ? dlsym(h, name) : NULL;
		if (g && !native_is_self((uint64_t)(uintptr_t)g))
			f = g;
		if (h)
			dlclose(h);
	}
	if (!f) {
		mp_log("%s called, but no Python library defines it", name);
		abort();
	}
	python_real_seen = f;
	return f;
}

/* Before an initialization after the end: CPython 3.12 and later put their default
 * allocators back (PyMem domains, arenas) as the runtime starts again, so the start-up's
 * check that wraps them again (python_maybe_schedule) runs from now on. */
static void python_initializing_again(void)
{
	if (python_ended)
		python_scheduled = false;
}

static void python_initialized_again(void)
{
	if (!python_ended)
		return;
	python_ended = false;
	record_end(true);
	python_scheduled = false;
}

MP_EXPORT void Py_Initialize(void)
{
	static void (*real_fn)(void);
	if (!real_fn)
		*(void **)&real_fn = python_real("Py_Initialize", __builtin_return_address(0));
	python_initializing_again();
	real_fn();
	python_initialized_again();
}

MP_EXPORT void Py_InitializeEx(int install_sigs)
{
	static void (*real_fn)(int);
	if (!real_fn)
		*(void **)&real_fn = python_real("Py_InitializeEx", __builtin_return_address(0));
	python_initializing_again();
	real_fn(install_sigs);
	python_initialized_again();
}

MP_EXPORT PyStatus Py_InitializeFromConfig(const PyConfig *config)
{
	static PyStatus (*real_fn)(const PyConfig *);
	if (!real_fn)
		*(void **)&real_fn = python_real("Py_InitializeFromConfig", __builtin_return_address(0));
	python_initializing_again();
	PyStatus st = real_fn(config);
	python_initialized_again();
	return st;
}

/* ---- attach ------------------------------------------------------------------------ */

#define PY_SYM(field, name)                                        \
	do {                                                       \
		*(void **)&python_api.field = dlsym(RTLD_DEFAULT, name);   \
		if (!python_api.field)                                     \
			missing = name;                            \
	} while (0)

bool python_present(void)
{
	return dlsym(RTLD_DEFAULT, "Py_GetVersion") && dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
}

const char *python_version(void)
{
	return python_version_str[0] ? python_version_str : NULL;
}

int python_attach(bool mixed)
{
	const char *missing = NULL;
	if (!python_present())
		return 0;
	PY_SYM(GetVersion, "Py_GetVersion");
	const char *real = python_api.GetVersion ? python_api.GetVersion() : "", *v = real;
	/* the version check itself is tested by pretending another version */
	const char *slow = getenv("MEMPROF_TEST_SLOW_CODE_US");
	python_test_slow_code_us = slow ? strtol(slow, NULL, 10) % 1000000 : 0;
	const char *fake = getenv("MEMPROF_TEST_PYTHON_VERSION");
	if (fake && *fake)
		v = fake;
	size_t vl = strcspn(v, " ");
	if (vl >= sizeof python_version_str)
		vl = sizeof python_version_str - 1;
	memcpy(python_version_str, v, vl);
	python_version_str[vl] = 0;
	python_variant = NULL;
	char have[64] = "";
	for (size_t i = 0; i < sizeof python_variants / sizeof python_variants[0]; i++) {
		const char *pv = python_variants[i]->version;
		size_t pl = strlen(pv);
		/* (a pretended version is the one refused, never another's walk for this one) */
		if (strncmp(v, pv, pl) == 0 && v[pl] == '.' && strncmp(real, pv, pl) == 0 && real[pl] == '.')
			python_variant = python_variants[i];
		size_t hl = strlen(have);
		snprintf(have + hl, sizeof have - hl, "%s%s", hl ? ", " : "", pv);
	}
	if (!python_variant) {
		mp_log("Python %s is not supported (this build supports CPython %s); "
		       "running the program without profiling", python_version_str, have);
		return -1;
	}
	/* a free-threaded build (3.13t) has other structures, and no GIL the MEM and OBJ
	 * domains' wrappers could rely on */
	if (strstr(real, "free-threading")) {
		mp_log("Python %s in its free-threading build is not supported; running the program without "
		       "profiling", python_version_str);
		return -1;
	}
	PY_SYM(GILStateGet, "PyGILState_GetThisThreadState");
	PY_SYM(IsInitialized, "Py_IsInitialized");
	PY_SYM(AddPendingCall, "Py_AddPendingCall");
	PY_SYM(ImportModule, "PyImport_ImportModule");
	PY_SYM(GetModule, "PyImport_GetModule");
	PY_SYM(UnicodeFromString, "PyUnicode_FromString");
	PY_SYM(LongFromUnsignedLong, "PyLong_FromUnsignedLong");
	PY_SYM(ThreadIdent, "PyThread_get_thread_ident");
	PY_SYM(IsTrue, "PyObject_IsTrue");
	PY_SYM(GetAttrString, "PyObject_GetAttrString");
	PY_SYM(CFunctionNewEx, "PyCFunction_NewEx");
	PY_SYM(CallArgs, "PyObject_CallFunctionObjArgs"); /* (PyObject_CallOneArg is inline in 3.10) */
	PY_SYM(IncRef, "Py_IncRef");
	PY_SYM(DecRef, "Py_DecRef");
	PY_SYM(ErrClear, "PyErr_Clear");
	PY_SYM(None, "_Py_NoneStruct");
	PY_SYM(GetAllocator, "PyMem_GetAllocator");
	PY_SYM(SetAllocator, "PyMem_SetAllocator");
	if (!missing)
		missing = python_variant->attach(mixed);
	if (missing) {
		mp_log("Python %s lacks %s; Python allocations are not attributed", python_version_str, missing);
		return -1;
	}
	python_stack_fn = python_variant->stack;
	python_alloc_gil = python_variant->alloc_gil;
	python_hooks_install(python_api.GetAllocator, python_api.SetAllocator, python_variant->allocator_name,
			     (int (*)(void))dlsym(RTLD_DEFAULT, "PyGILState_Check"));
	python_hooks_arena((void (*)(PyObjectArenaAllocator *))dlsym(RTLD_DEFAULT, "PyObject_GetArenaAllocator"),
			   (void (*)(PyObjectArenaAllocator *))dlsym(RTLD_DEFAULT, "PyObject_SetArenaAllocator"));
	python_active = true;
	return 1;
}
