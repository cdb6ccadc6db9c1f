/* The module map: every loaded object with its address range and build id, so that
 * the analyzer can symbolize raw instruction pointers. Scanned at start, whenever the
 * loader reports objects added or removed (checked by the writer on each flush), and
 * before every dlclose.
 *
 * The module generation (format.h) is bumped after every dlclose that unloaded an
 * object; native frames carry it. Since the scan before a dlclose runs in the old
 * generation, every object is seen in the generation it was loaded in (up to the short
 * window between the unload and the bump, where another thread's dlopen may slip in). An
 * object missing from a scan is forgotten, so when it (or another) is loaded at the same
 * place again it gets a new record with the generation of then. */
#ifndef MEMPROF_PRELOAD_MODULES_H
#define MEMPROF_PRELOAD_MODULES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct module_rec {
	char *path;
	char build_id[41];
	uint64_t base, lo, hi, ts;
	unsigned gen;
	struct module_rec *next;
} module_rec_t;

extern atomic_uint modules_gen;

/* The current module generation, for native frames. */
static inline unsigned modules_generation(void)
{
	return atomic_load_explicit(&modules_gen, memory_order_relaxed);
}

struct dl_phdr_info;
/* The address range of a loaded object, from its lowest PT_LOAD segment to the end of
 * its highest: *hi is 0 when it has none. */
void modules_span(const struct dl_phdr_info *info, uint64_t *lo, uint64_t *hi);
/* The loaded span of the object that holds addr (modules_span); false if none does. */
bool modules_span_of(uint64_t addr, uint64_t *lo, uint64_t *hi);

/* The loader's count of unloaded objects so far (read before the real dlclose). */
unsigned long long modules_unloads(void);
/* After a successful dlclose: a new generation if an object was unloaded since `before`. */
void modules_after_dlclose(unsigned long long before);

/* Scans the loaded objects; new ones are queued for the writer. */
void modules_scan(void);
/* Scans only if the loader's add/remove counters changed since the last scan. */
void modules_scan_if_changed(void);
/* Takes the queued records (a list; free each with modules_rec_free). */
module_rec_t *modules_take_new(void);
void modules_rec_free(module_rec_t *m);
/* Child after fork: everything is new again for the child's file. */
void modules_fork_child(void);

#endif
