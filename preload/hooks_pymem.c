/* The PyMem allocator wrappers, installed around the allocators in place (as
 * tracemalloc does), so that memory allocated before attach is still freed by the
 * allocator that owns it. Each Python allocation is recorded here once, with the size
 * Python asked for; the guard is held around the wrapped allocator, so pymalloc's own
 * calls into malloc are not recorded again. */
#define Py_BUILD_CORE 1
#include "hooks_pymem.h"
#include "clock.h"
#include "mp.h"
#include "python.h"
#include "record.h"

#include <memprof/format.h>

typedef struct hooks_pymem_domain {
	PyMemAllocatorEx orig;
	PyMemAllocatorDomain domain;
	int allocator;
} hooks_pymem_domain_t;

static hooks_pymem_domain_t hooks_pymem_domains[3] = {
	{.domain = PYMEM_DOMAIN_RAW, .allocator = MP_AL_PYMEM_RAW},
	{.domain = PYMEM_DOMAIN_MEM, .allocator = MP_AL_PYMEM_MEM},
	{.domain = PYMEM_DOMAIN_OBJ, .allocator = MP_AL_PYMEM_OBJ},
};
static hooks_pymem_get_t hooks_pymem_get;
static hooks_pymem_set_t hooks_pymem_set;

static void *hooks_pymem_malloc(void *ctx, size_t size)
{
	hooks_pymem_domain_t *d = ctx;
	mp_guard++;
	void *p = d->orig.malloc(d->orig.ctx, size);
	mp_guard--;
	if (p && mp_should_record() && !record_skip_alloc(size))
		record_alloc(p, size, d->allocator);
	return p;
}

static void *hooks_pymem_calloc(void *ctx, size_t n, size_t size)
{
	hooks_pymem_domain_t *d = ctx;
	mp_guard++;
	void *p = d->orig.calloc(d->orig.ctx, n, size);
	mp_guard--;
	if (p && mp_should_record() && !record_skip_alloc(n * size))
		record_alloc(p, n * size, d->allocator);
	return p;
}

static void *hooks_pymem_realloc(void *ctx, void *old, size_t size)
{
	hooks_pymem_domain_t *d = ctx;
	uint64_t ts = d->allocator == MP_AL_PYMEM_RAW ? clock_now() : RECORD_TS_GIL;
	mp_guard++;
	void *p = d->orig.realloc(d->orig.ctx, old, size);
	mp_guard--;
	if (p && mp_should_record())
		record_realloc(old, ts, p, size, d->allocator);
	return p;
}

static void hooks_pymem_free(void *ctx, void *p)
{
	hooks_pymem_domain_t *d = ctx;
	if (p && d->allocator == MP_AL_PYMEM_OBJ)
		python_code_free_check(p); /* a code object dying: forget its address */
	if (p && mp_should_record() && !record_skip_free(p))
		record_free(p, d->allocator == MP_AL_PYMEM_RAW ? RECORD_TS_NOW : RECORD_TS_GIL);
	mp_guard++;
	d->orig.free(d->orig.ctx, p);
	mp_guard--;
}

static void hooks_pymem_wrap(hooks_pymem_domain_t *d)
{
	PyMemAllocatorEx cur;
	hooks_pymem_get(d->domain, &cur);
	if (cur.malloc == hooks_pymem_malloc)
		return;
	d->orig = cur;
	PyMemAllocatorEx w = {d, hooks_pymem_malloc, hooks_pymem_calloc, hooks_pymem_realloc, hooks_pymem_free};
	hooks_pymem_set(d->domain, &w);
}

void python_hooks_install(hooks_pymem_get_t get, hooks_pymem_set_t set)
{
	hooks_pymem_get = get;
	hooks_pymem_set = set;
	for (int i = 0; i < 3; i++)
		hooks_pymem_wrap(&hooks_pymem_domains[i]);
}

void python_hooks_ensure(void)
{
	for (int i = 0; i < 3; i++)
		hooks_pymem_wrap(&hooks_pymem_domains[i]);
}
