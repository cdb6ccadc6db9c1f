/* The module map: every loaded object with its address range and build id, so that
 * the analyzer can symbolize raw instruction pointers. Scanned at start, whenever the
 * loader reports objects added or removed (checked by the writer on each flush), and
 * before every dlclose. */
#ifndef MEMPROF_PRELOAD_MODULES_H
#define MEMPROF_PRELOAD_MODULES_H

#include <stdint.h>

typedef struct module_rec {
	char *path;
	char build_id[41];
	uint64_t base, lo, hi, ts;
	struct module_rec *next;
} module_rec_t;

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
