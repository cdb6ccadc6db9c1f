/* The module map (see modules.h). */
#define _GNU_SOURCE
#include "modules.h"
#include "unwind.h"
#include "clock.h"
#include "mem.h"
#include "mp.h"

#include <elf.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct modules_known {
	uint64_t base, lo;
	char *path;
	unsigned seen; /* the last scan that saw it */
	struct modules_known *next;
} modules_known_t;

atomic_uint modules_gen;

static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static modules_known_t *modules_known;
static unsigned modules_scans;
/* queued for the writer, in the order seen (so row ids follow it) */
static module_rec_t *modules_new, **modules_new_tail = &modules_new;
static unsigned long long modules_adds, modules_subs;
static char modules_exe[4096];

static void modules_build_id(struct dl_phdr_info *info, char out[41])
{
	out[0] = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		const unsigned char *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
			const unsigned char *name = p + sizeof *nh;
			const unsigned char *desc = name + ((nh->n_namesz + 3) & ~3u);
			if (desc + nh->n_descsz > end)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
				unsigned n = nh->n_descsz > 20 ? 20 : nh->n_descsz;
				for (unsigned k = 0; k < n; k++)
					snprintf(out + 2 * k, 3, "%02x", desc[k]);
				return;
			}
			p = desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
}

void modules_span(const struct dl_phdr_info *info, uint64_t *lo, uint64_t *hi)
{
	*lo = UINT64_MAX;
	*hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t a = info->dlpi_addr + ph->p_vaddr;
		if (a < *lo)
			*lo = a;
		if (a + ph->p_memsz > *hi)
			*hi = a + ph->p_memsz;
	}
}

typedef struct modules_find {
	uint64_t addr, lo, hi;
} modules_find_t;

static int modules_find_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	modules_find_t *f = arg;
	uint64_t lo, hi;
	(void)size;
	modules_span(info, &lo, &hi);
	if (f->addr < lo || f->addr >= hi)
		return 0;
	f->lo = lo;
	f->hi = hi;
	return 1;
}

bool modules_span_of(uint64_t addr, uint64_t *lo, uint64_t *hi)
{
	modules_find_t f = {addr, 0, 0};
	if (!dl_iterate_phdr(modules_find_cb, &f))
		return false;
	*lo = f.lo;
	*hi = f.hi;
	return true;
}

static int modules_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	uint64_t lo, hi;
	modules_span(info, &lo, &hi);
	if (!hi)
		return 0;
	const char *path = info->dlpi_name;
	if (!path || !*path)
		path = modules_exe; /* the main program */
	if (!*path)
		return 0;
	for (modules_known_t *k = modules_known; k; k = k->next)
		if (k->base == info->dlpi_addr && k->lo == lo && !strcmp(k->path, path)) {
			k->seen = modules_scans;
			return 0;
		}
	/* a library loaded by a relative name ("./libx.so", LD_LIBRARY_PATH=.) is recorded
	 * by its absolute path, which the analyzer needs to read it */
	char abs[PATH_MAX];
	const char *rec = path[0] != '/' && realpath(path, abs) ? abs : path;
	modules_known_t *k = mem_alloc(sizeof *k);
	module_rec_t *m = mem_alloc(sizeof *m);
	char *p1 = mem_strdup(path), *p2 = mem_strdup(rec);
	if (!k || !m || !p1 || !p2) {
		mem_free(k), mem_free(m), mem_free(p1), mem_free(p2);
		return 0;
	}
	k->base = info->dlpi_addr;
	k->lo = lo;
	k->path = p1;
	k->seen = modules_scans;
	k->next = modules_known;
	modules_known = k;
	m->path = p2;
	modules_build_id(info, m->build_id);
	m->base = info->dlpi_addr;
	m->lo = lo;
	m->hi = hi;
	m->ts = clock_now();
	m->gen = modules_generation();
	m->next = NULL;
	*modules_new_tail = m;
	modules_new_tail = &m->next;
	return 0;
}

/* Forgets the objects the last scan did not see: they were unloaded. */
static void modules_forget_unseen(void)
{
	for (modules_known_t **kp = &modules_known; *kp;) {
		modules_known_t *k = *kp;
		if (k->seen == modules_scans) {
			kp = &k->next;
			continue;
		}
		*kp = k->next;
		mem_free(k->path);
		mem_free(k);
	}
}

void modules_scan(void)
{
	mp_guard_enter();
	pthread_mutex_lock(&modules_lock);
	if (!modules_exe[0]) {
		ssize_t n = readlink("/proc/self/exe", modules_exe, sizeof modules_exe - 1);
		modules_exe[n > 0 ? n : 0] = 0;
	}
	modules_scans++;
	dl_iterate_phdr(modules_cb, NULL);
	modules_forget_unseen();
	pthread_mutex_unlock(&modules_lock);
	mp_unguard();
}

static int modules_counters(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long long *c = arg;
	c[0] = info->dlpi_adds;
	c[1] = info->dlpi_subs;
	return 1;
}

void modules_scan_if_changed(void)
{
	unsigned long long c[2] = {0, 0};
	dl_iterate_phdr(modules_counters, c);
	if (c[0] == modules_adds && c[1] == modules_subs)
		return;
	modules_adds = c[0];
	modules_subs = c[1];
	unwind_unloads_seen(c[1]);
	modules_scan();
}

unsigned long long modules_unloads(void)
{
	unsigned long long c[2] = {0, 0};
	dl_iterate_phdr(modules_counters, c);
	return c[1];
}

void modules_after_dlclose(unsigned long long before)
{
	if (modules_unloads() != before)
		atomic_fetch_add_explicit(&modules_gen, 1, memory_order_relaxed);
}

module_rec_t *modules_take_new(void)
{
	pthread_mutex_lock(&modules_lock);
	module_rec_t *m = modules_new;
	modules_new = NULL;
	modules_new_tail = &modules_new;
	pthread_mutex_unlock(&modules_lock);
	return m;
}

void modules_rec_free(module_rec_t *m)
{
	mem_free(m->path);
	mem_free(m);
}

void modules_fork_child(void)
{
	pthread_mutex_init(&modules_lock, NULL);
	modules_known_t *k = modules_known;
	while (k) {
		modules_known_t *n = k->next;
		mem_free(k->path);
		mem_free(k);
		k = n;
	}
	modules_known = NULL;
	module_rec_t *m = modules_new;
	while (m) {
		module_rec_t *n = m->next;
		modules_rec_free(m);
		m = n;
	}
	modules_new = NULL;
	modules_new_tail = &modules_new;
	modules_adds = modules_subs = 0;
}
