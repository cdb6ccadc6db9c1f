/* mkprofile: writes synthetic memprof files for the analyzer tests.
 *
 *   mkprofile OUT.db < SPEC      write a profile described by SPEC (below)
 *   mkprofile --sites            print "K LINE FUNCTION" for the self:K return addresses
 *   mkprofile --bench OUT.db N T write N events over T threads (timing only)
 *   mkprofile --compact DB       make a real capture small for checking in: every event
 *                                chunk recompressed at zstd's level 19 (checked to hold
 *                                the same bytes), 1 KiB pages, vacuumed (golden/regen)
 *   mkprofile --mutate DB SEED N change N random bytes of every event chunk's payload
 *                                (before compression; SEED odd: the last byte is also cut
 *                                off), so damage reaches the record decoder; when the
 *                                records still decode, `count` follows them, so the
 *                                garbage events reach every command (test_fuzz.py)
 *
 * SPEC, one directive per line ('#' comments):
 *   meta KEY VALUE...                       (value = rest of the line; "-" deletes the key;
 *                                           schema_version is preset to MP_SCHEMA_VERSION)
 *   thread ID TID NAME
 *   code ID FILENAME NAME QUALNAME FIRSTLINENO HEX|-
 *   node ID PARENT FRAME                    FRAME: py:CODE:LASTI | ip:HEX | self:K | libc | sqlite
 *                                           | chains | splice:NODE
 *                                           (libc: in twalk; sqlite: in sqlite3_exec;
 *                                           py:0:0: the truncation marker;
 *                                           chains: MP_FRAME_CHAINS; splice:NODE: a
 *                                           splice of chain node NODE);
 *                                           self:K@GEN: in module generation GEN
 *   modules                                 rows for every object loaded in this process
 *   overlay OBJ GEN                         a row for OBJ (libc | sqlite) placed at this
 *                                           program's own load bias, first seen in GEN (as
 *                                           if loaded where mkprofile was unloaded)
 *   alloc THREAD TS ADDR SIZE STACK [ALLOCATOR]   (ADDR hex, others decimal)
 *   free THREAD TS ADDR
 *   end THREAD TS
 *   flush THREAD                            close THREAD's current chunk (one events row)
 *   chunk N                                 close chunks automatically every N events
 *   corrupt MODE                            damage the next chunk written:
 *                                           zstd | rawsize | count | record | truncate
 *   sample TS RSS
 * Every thread's open chunk is written at the end of the input, in thread order.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <elf.h>
#include <inttypes.h>
#include <link.h>
#include <search.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "memprof/format.h"
#include "memprof/schema.h"

static sqlite3 *mk_db;

static void mk_die(const char *what)
{
	fprintf(stderr, "mkprofile: %s: %s\n", what, mk_db ? sqlite3_errmsg(mk_db) : "");
	exit(1);
}

static void mk_exec(const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(mk_db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "mkprofile: %s: %s\n", sql, err);
		exit(1);
	}
}

/* ---- return addresses with known lines (-O0, see meson.build) ---- */

#define MK_SITES 3
static uint64_t mk_site_ip[MK_SITES];
static int mk_site_line[MK_SITES];

__attribute__((noinline)) static uint64_t mk_ret(void)
{
	return (uint64_t)(uintptr_t)__builtin_return_address(0);
}

__attribute__((noinline)) static void mk_sites(void)
{
	mk_site_line[0] = __LINE__ + 1;
	mk_site_ip[0] = mk_ret();
	mk_site_line[1] = __LINE__ + 1;
	mk_site_ip[1] = mk_ret();
	mk_site_line[2] = __LINE__ + 1;
	mk_site_ip[2] = mk_ret();
}

static uint64_t mk_libc_ip, mk_sqlite_ip;

static void mk_nofree(void *p)
{
	(void)p;
}

static int mk_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* twalk's callback: its return address is inside libc (twalk, unlike qsort, is not
 * intercepted by ASan, so this holds in sanitizer builds too). */
static void mk_walk(const void *node, VISIT v, int depth)
{
	(void)node, (void)v, (void)depth;
	if (!mk_libc_ip)
		mk_libc_ip = (uint64_t)(uintptr_t)__builtin_return_address(0);
}

static int mk_exec_cb(void *arg, int n, char **v, char **c)
{
	(void)arg, (void)n, (void)v, (void)c;
	mk_sqlite_ip = (uint64_t)(uintptr_t)__builtin_return_address(0);
	return 0;
}

static void mk_find_ips(void)
{
	mk_sites();
	/* Three nodes: the root's first (preorder) visit is a plain call; a lone leaf's
	 * would be a tail call and leave twalk's caller as the return address. */
	static int keys[3] = {1, 2, 3};
	void *root = NULL;
	for (int i = 0; i < 3; i++)
		tsearch(&keys[i], &root, mk_cmp);
	twalk(root, mk_walk);
	tdestroy(root, mk_nofree);
	sqlite3 *tmp;
	sqlite3_open(":memory:", &tmp);
	sqlite3_exec(tmp, "SELECT 1", mk_exec_cb, NULL, NULL);
	sqlite3_close(tmp);
}

/* ---- modules ---- */

typedef struct mk_modules {
	sqlite3_stmt *st;
	uint64_t only; /* 0: every object; else only the one holding this address... */
	uint64_t bias; /* ...placed at this load bias */
	int64_t gen;
} mk_modules_t;

static int mk_module_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	const mk_modules_t *mm = arg;
	sqlite3_stmt *st = mm->st;
	char path[4096];
	if (!info->dlpi_name[0]) {
		ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
		if (n <= 0)
			return 0;
		path[n] = '\0';
	} else if (info->dlpi_name[0] == '/') {
		snprintf(path, sizeof path, "%s", info->dlpi_name);
	} else {
		return 0; /* vdso */
	}
	uint64_t lo = UINT64_MAX, hi = 0;
	char build_id[129] = "";
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD) {
			if (ph->p_vaddr < lo)
				lo = ph->p_vaddr;
			if (ph->p_vaddr + ph->p_memsz > hi)
				hi = ph->p_vaddr + ph->p_memsz;
		} else if (ph->p_type == PT_NOTE) {
			const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
			const uint8_t *end = p + ph->p_memsz;
			while (p + sizeof(ElfW(Nhdr)) <= end) {
				const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
				const uint8_t *name = p + sizeof *nh;
				const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);
				if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
				    memcmp(name, "GNU", 4) == 0 && nh->n_descsz <= 64)
					for (unsigned k = 0; k < nh->n_descsz; k++)
						sprintf(build_id + 2 * k, "%02x", desc[k]);
				p = desc + ((nh->n_descsz + 3) & ~3u);
			}
		}
	}
	uint64_t bias = info->dlpi_addr;
	if (mm->only) {
		if (mm->only < bias + lo || mm->only >= bias + hi)
			return 0;
		bias = mm->bias;
	}
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, build_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, (int64_t)bias);
	sqlite3_bind_int64(st, 4, (int64_t)(bias + lo));
	sqlite3_bind_int64(st, 5, (int64_t)(bias + hi));
	sqlite3_bind_int64(st, 6, mm->gen);
	if (sqlite3_step(st) != SQLITE_DONE)
		mk_die("modules");
	return 0;
}

/* ---- chunks ---- */

typedef struct mk_thread {
	int64_t id;
	mp_event_t *ev;
	size_t n, cap;
} mk_thread_t;

static mk_thread_t mk_threads[256];
static size_t mk_n_threads;
static size_t mk_chunk_events = SIZE_MAX;
static char mk_corrupt[32];
static sqlite3_stmt *mk_ev_st;

static mk_thread_t *mk_thread(int64_t id)
{
	for (size_t i = 0; i < mk_n_threads; i++)
		if (mk_threads[i].id == id)
			return &mk_threads[i];
	if (mk_n_threads == 256) {
		fprintf(stderr, "mkprofile: too many threads\n");
		exit(1);
	}
	mk_threads[mk_n_threads].id = id;
	return &mk_threads[mk_n_threads++];
}

static void mk_flush(mk_thread_t *t)
{
	if (t->n == 0)
		return;
	uint8_t *raw = malloc(t->n * MP_ENC_MAX_RECORD + 16), *p = raw;
	mp_codec_t c;
	uint64_t first_ts = t->ev[0].ts;
	mp_codec_init(&c, first_ts);
	for (size_t i = 0; i < t->n; i++)
		p = mp_encode_event(&c, p, &t->ev[i]);
	int64_t count = (int64_t)t->n;
	if (strcmp(mk_corrupt, "record") == 0)
		*p++ = 0x0f; /* kind 15: unknown */
	if (strcmp(mk_corrupt, "truncate") == 0)
		p--;
	size_t raw_len = (size_t)(p - raw);
	size_t bound = ZSTD_compressBound(raw_len);
	uint8_t *z = malloc(bound);
	size_t zlen = ZSTD_compress(z, bound, raw, raw_len, 3);
	if (ZSTD_isError(zlen))
		mk_die("zstd");
	int64_t raw_col = (int64_t)raw_len;
	if (strcmp(mk_corrupt, "zstd") == 0)
		for (size_t i = 0; i < zlen; i++)
			z[i] = (uint8_t)(z[i] * 7 + 13);
	if (strcmp(mk_corrupt, "rawsize") == 0)
		raw_col++;
	if (strcmp(mk_corrupt, "count") == 0)
		count++;
	mk_corrupt[0] = '\0';
	sqlite3_stmt *st = mk_ev_st;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int64(st, 2, count);
	sqlite3_bind_int64(st, 3, (int64_t)first_ts);
	sqlite3_bind_int64(st, 4, (int64_t)t->ev[t->n - 1].ts);
	sqlite3_bind_int64(st, 5, raw_col);
	sqlite3_bind_blob(st, 6, z, (int)zlen, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		mk_die("events");
	free(raw);
	free(z);
	t->n = 0;
}

static void mk_event(int64_t thread, const mp_event_t *e)
{
	mk_thread_t *t = mk_thread(thread);
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 1024;
		t->ev = realloc(t->ev, t->cap * sizeof *t->ev);
	}
	t->ev[t->n++] = *e;
	if (t->n >= mk_chunk_events)
		mk_flush(t);
}

static int mk_hex(int c)
{
	return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

static uint64_t mk_frame(const char *s)
{
	unsigned code, lasti, k, gen = 0;
	if (sscanf(s, "py:%u:%u", &code, &lasti) == 2)
		return mp_frame_python(code, lasti);
	if (strncmp(s, "ip:", 3) == 0)
		return strtoull(s + 3, NULL, 16);
	if (sscanf(s, "self:%u@%u", &k, &gen) >= 1 && k < MK_SITES)
		return mp_frame_native(mk_site_ip[k], gen);
	if (strcmp(s, "libc") == 0)
		return mk_libc_ip;
	if (strcmp(s, "sqlite") == 0)
		return mk_sqlite_ip;
	if (strcmp(s, "chains") == 0)
		return MP_FRAME_CHAINS;
	if (sscanf(s, "splice:%u", &k) == 1)
		return mp_frame_splice(k);
	fprintf(stderr, "mkprofile: bad frame %s\n", s);
	exit(1);
}

static void mk_prepare(void)
{
	char sql[128];
	mk_exec(MP_SCHEMA_SQL);
	snprintf(sql, sizeof sql, "INSERT INTO meta VALUES ('schema_version', '%d')", MP_SCHEMA_VERSION);
	mk_exec(sql);
	if (sqlite3_prepare_v2(mk_db,
			       "INSERT INTO events(thread, count, first_ts, last_ts, raw_bytes, data)"
			       " VALUES (?, ?, ?, ?, ?, ?)",
			       -1, &mk_ev_st, NULL) != SQLITE_OK)
		mk_die("prepare");
}

static void mk_spec(void)
{
	char line[8192];
	sqlite3_stmt *st;
	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\n")] = '\0';
		char cmd[32], a[2048], b[2048], c[2048], e[8192];
		int64_t n1, n2;
		uint64_t u1, u2, u3;
		unsigned al;
		if (!line[0] || line[0] == '#' || sscanf(line, "%31s", cmd) != 1)
			continue;
		if (strcmp(cmd, "meta") == 0) {
			int off = 0;
			if (sscanf(line, "meta %2047s %n", a, &off) < 1 || !off)
				goto bad;
			if (strcmp(line + off, "-") == 0) {
				sqlite3_prepare_v2(mk_db, "DELETE FROM meta WHERE key = ?", -1, &st, NULL);
			} else {
				sqlite3_prepare_v2(mk_db, "INSERT OR REPLACE INTO meta VALUES (?, ?)", -1, &st, NULL);
				sqlite3_bind_text(st, 2, line + off, -1, SQLITE_TRANSIENT);
			}
			sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
			if (sqlite3_step(st) != SQLITE_DONE)
				mk_die("meta");
			sqlite3_finalize(st);
		} else if (strcmp(cmd, "thread") == 0) {
			if (sscanf(line, "thread %" SCNd64 " %" SCNd64 " %2047s", &n1, &n2, a) != 3)
				goto bad;
			sqlite3_prepare_v2(mk_db, "INSERT INTO threads VALUES (?, ?, ?)", -1, &st, NULL);
			sqlite3_bind_int64(st, 1, n1);
			sqlite3_bind_int64(st, 2, n2);
			sqlite3_bind_text(st, 3, a, -1, SQLITE_TRANSIENT);
			if (sqlite3_step(st) != SQLITE_DONE)
				mk_die("threads");
			sqlite3_finalize(st);
		} else if (strcmp(cmd, "code") == 0) {
			if (sscanf(line, "code %" SCNd64 " %2047s %2047s %2047s %" SCNd64 " %8191s", &n1, a, b,
				   c, &n2, e) != 6)
				goto bad;
			size_t len = strcmp(e, "-") == 0 ? 0 : strlen(e) / 2;
			uint8_t *tab = malloc(len + 1);
			for (size_t i = 0; i < len; i++)
				tab[i] = (uint8_t)(mk_hex(e[2 * i]) << 4 | mk_hex(e[2 * i + 1]));
			sqlite3_prepare_v2(mk_db, "INSERT INTO pycode VALUES (?, ?, ?, ?, ?, ?)", -1, &st, NULL);
			sqlite3_bind_int64(st, 1, n1);
			sqlite3_bind_text(st, 2, a, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 3, b, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 4, c, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 5, n2);
			sqlite3_bind_blob(st, 6, tab, (int)len, SQLITE_TRANSIENT);
			if (sqlite3_step(st) != SQLITE_DONE)
				mk_die("pycode");
			sqlite3_finalize(st);
			free(tab);
		} else if (strcmp(cmd, "node") == 0) {
			if (sscanf(line, "node %" SCNd64 " %" SCNd64 " %2047s", &n1, &n2, a) != 3)
				goto bad;
			sqlite3_prepare_v2(mk_db, "INSERT INTO stack_nodes VALUES (?, ?, ?)", -1, &st, NULL);
			sqlite3_bind_int64(st, 1, n1);
			sqlite3_bind_int64(st, 2, n2);
			sqlite3_bind_int64(st, 3, (int64_t)mk_frame(a));
			if (sqlite3_step(st) != SQLITE_DONE)
				mk_die("stack_nodes");
			sqlite3_finalize(st);
		} else if (strcmp(cmd, "modules") == 0 || strcmp(cmd, "overlay") == 0) {
			mk_modules_t mm = {0};
			if (strcmp(cmd, "overlay") == 0) {
				Dl_info info;
				struct link_map *self = NULL;
				if (sscanf(line, "overlay %2047s %" SCNd64, a, &mm.gen) != 2 ||
				    (strcmp(a, "libc") != 0 && strcmp(a, "sqlite") != 0))
					goto bad;
				mm.only = strcmp(a, "libc") == 0 ? mk_libc_ip : mk_sqlite_ip;
				if (!dladdr1((void *)mk_sites, &info, (void **)&self, RTLD_DL_LINKMAP) || !self)
					mk_die("dladdr1");
				mm.bias = self->l_addr;
			}
			sqlite3_prepare_v2(mk_db,
					   "INSERT INTO modules(path, build_id, base, lo, hi, ts, gen)"
					   " VALUES (?, ?, ?, ?, ?, 0, ?)",
					   -1, &mm.st, NULL);
			dl_iterate_phdr(mk_module_cb, &mm);
			sqlite3_finalize(mm.st);
		} else if (strcmp(cmd, "alloc") == 0) {
			al = MP_AL_MALLOC;
			int got = sscanf(line, "alloc %" SCNd64 " %" SCNu64 " %" SCNx64 " %" SCNu64 " %" SCNd64 " %u",
					 &n1, &u1, &u2, &u3, &n2, &al);
			if (got < 5)
				goto bad;
			mp_event_t ev = {.ts = u1, .addr = u2, .size = u3, .stack = (uint32_t)n2,
					 .kind = MP_EV_ALLOC, .allocator = (uint8_t)al};
			mk_event(n1, &ev);
		} else if (strcmp(cmd, "free") == 0) {
			if (sscanf(line, "free %" SCNd64 " %" SCNu64 " %" SCNx64, &n1, &u1, &u2) != 3)
				goto bad;
			mp_event_t ev = {.ts = u1, .addr = u2, .kind = MP_EV_FREE};
			mk_event(n1, &ev);
		} else if (strcmp(cmd, "end") == 0) {
			if (sscanf(line, "end %" SCNd64 " %" SCNu64, &n1, &u1) != 2)
				goto bad;
			mp_event_t ev = {.ts = u1, .kind = MP_EV_END};
			mk_event(n1, &ev);
		} else if (strcmp(cmd, "flush") == 0) {
			if (sscanf(line, "flush %" SCNd64, &n1) != 1)
				goto bad;
			mk_flush(mk_thread(n1));
		} else if (strcmp(cmd, "chunk") == 0) {
			if (sscanf(line, "chunk %" SCNu64, &u1) != 1 || !u1)
				goto bad;
			mk_chunk_events = (size_t)u1;
		} else if (strcmp(cmd, "corrupt") == 0) {
			if (sscanf(line, "corrupt %31s", mk_corrupt) != 1)
				goto bad;
		} else if (strcmp(cmd, "sample") == 0) {
			if (sscanf(line, "sample %" SCNu64 " %" SCNu64, &u1, &u2) != 2)
				goto bad;
			sqlite3_prepare_v2(mk_db, "INSERT INTO samples VALUES (?, ?)", -1, &st, NULL);
			sqlite3_bind_int64(st, 1, (int64_t)u1);
			sqlite3_bind_int64(st, 2, (int64_t)u2);
			if (sqlite3_step(st) != SQLITE_DONE)
				mk_die("samples");
			sqlite3_finalize(st);
		} else {
			goto bad;
		}
		continue;
bad:
		fprintf(stderr, "mkprofile: bad line: %s\n", line);
		exit(1);
	}
	for (size_t i = 0; i < mk_n_threads; i++)
		mk_flush(&mk_threads[i]);
}

/* N events over T threads: a deterministic mix of allocations and frees (half of them
 * on another thread), 1000 stacks, 1 MiB-ish chunks. For timing the analyzer. */
static void mk_bench(uint64_t n, unsigned nt)
{
	mk_exec("INSERT INTO meta VALUES ('clock_ticks_per_sec', '1000000000'),"
		" ('clock_start_ticks', '0'), ('command', 'bench'), ('status', 'complete')");
	for (int i = 1; i <= 1000; i++) {
		char sql[128];
		snprintf(sql, sizeof sql, "INSERT INTO stack_nodes VALUES (%d, %d, %d)", i, i > 10 ? i / 10 : 0,
			 0x1000 + i);
		mk_exec(sql);
	}
	mk_chunk_events = 400000;
	uint64_t x = 88172645463325252ull;
	uint64_t *live = calloc(1 << 20, sizeof *live);
	size_t n_live = 0;
	for (uint64_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int64_t th = (int64_t)(x % nt) + 1;
		mp_event_t ev = {.ts = i * 10};
		if (n_live && (n_live >= (1 << 20) || (x >> 20) % 100 < 49)) {
			size_t k = (size_t)((x >> 30) % n_live);
			ev.kind = MP_EV_FREE;
			ev.addr = live[k];
			live[k] = live[--n_live];
		} else {
			ev.kind = MP_EV_ALLOC;
			ev.addr = 0x10000000 + (i << 4);
			ev.size = 16 + ((x >> 24) & 1023);
			ev.stack = 1 + (uint32_t)((x >> 40) % 1000);
			live[n_live++] = ev.addr;
		}
		mk_event(th, &ev);
	}
	free(live);
	for (size_t i = 0; i < mk_n_threads; i++)
		mk_flush(&mk_threads[i]);
}

/* Recompresses every chunk at a high level and vacuums into 1 KiB pages: the same
 * content in far fewer bytes (the capture side favours speed). */
static int mk_compact(const char *path)
{
	if (sqlite3_open(path, &mk_db) != SQLITE_OK)
		mk_die(path);
	mk_exec("PRAGMA journal_mode=DELETE; BEGIN");
	sqlite3_stmt *sel, *upd;
	if (sqlite3_prepare_v2(mk_db, "SELECT id, raw_bytes, data FROM events", -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(mk_db, "UPDATE events SET data = ? WHERE id = ?", -1, &upd, NULL) != SQLITE_OK)
		mk_die("prepare");
	while (sqlite3_step(sel) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(sel, 0);
		size_t raw = (size_t)sqlite3_column_int64(sel, 1);
		const void *z = sqlite3_column_blob(sel, 2);
		size_t zlen = (size_t)sqlite3_column_bytes(sel, 2);
		uint8_t *buf = malloc(raw + 1), *back = malloc(raw + 1);
		size_t bound = ZSTD_compressBound(raw);
		uint8_t *out = malloc(bound);
		if (!buf || !back || !out || ZSTD_decompress(buf, raw, z, zlen) != raw)
			mk_die("events row does not decompress to raw_bytes");
		size_t olen = ZSTD_compress(out, bound, buf, raw, 19);
		if (ZSTD_isError(olen) || ZSTD_decompress(back, raw, out, olen) != raw || memcmp(buf, back, raw) != 0)
			mk_die("recompression");
		if (olen < zlen) {
			sqlite3_reset(upd);
			sqlite3_bind_blob(upd, 1, out, (int)olen, SQLITE_TRANSIENT);
			sqlite3_bind_int64(upd, 2, id);
			if (sqlite3_step(upd) != SQLITE_DONE)
				mk_die("update");
		}
		free(buf);
		free(back);
		free(out);
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	mk_exec("COMMIT; PRAGMA page_size=1024; VACUUM");
	sqlite3_close(mk_db);
	return 0;
}

/* Damages every chunk's records; the frame stays valid zstd with a matching raw_bytes. */
static int mk_mutate(const char *path, uint64_t seed, unsigned n)
{
	if (sqlite3_open(path, &mk_db) != SQLITE_OK)
		mk_die(path);
	mk_exec("BEGIN");
	sqlite3_stmt *sel, *upd;
	if (sqlite3_prepare_v2(mk_db, "SELECT id, raw_bytes, data FROM events", -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(mk_db, "UPDATE events SET data = ?, raw_bytes = ?, count = coalesce(?, count)"
				      " WHERE id = ?", -1, &upd, NULL) !=
		    SQLITE_OK)
		mk_die("prepare");
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	while (sqlite3_step(sel) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(sel, 0);
		size_t raw = (size_t)sqlite3_column_int64(sel, 1);
		const void *z = sqlite3_column_blob(sel, 2);
		size_t zlen = (size_t)sqlite3_column_bytes(sel, 2);
		uint64_t first_ts = 0;
		if (raw > (1u << 30))
			continue;
		uint8_t *buf = malloc(raw + 1);
		if (!buf || !z || ZSTD_decompress(buf, raw, z, zlen) != raw) {
			free(buf);
			continue;
		}
		for (unsigned k = 0; k < n && raw; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[(x >> 8) % raw] = (uint8_t)(x >> 56);
		}
		if ((seed & 1) && raw)
			raw--;
		/* do the records still decode? then count them */
		mp_codec_t c;
		mp_event_t ev;
		int64_t records = 0;
		mp_codec_init(&c, first_ts);
		const uint8_t *p = buf, *end = buf + raw;
		while (p && p < end) {
			p = mp_decode_event(&c, p, end, &ev);
			records++;
		}
		size_t bound = ZSTD_compressBound(raw);
		uint8_t *out = malloc(bound);
		size_t olen = out ? ZSTD_compress(out, bound, buf, raw, 1) : 0;
		if (out && !ZSTD_isError(olen)) {
			sqlite3_reset(upd);
			sqlite3_bind_blob(upd, 1, out, (int)olen, SQLITE_TRANSIENT);
			sqlite3_bind_int64(upd, 2, (int64_t)raw);
			if (p)
				sqlite3_bind_int64(upd, 3, records);
			else
				sqlite3_bind_null(upd, 3);
			sqlite3_bind_int64(upd, 4, id);
			if (sqlite3_step(upd) != SQLITE_DONE)
				mk_die("update");
		}
		free(buf);
		free(out);
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	mk_exec("COMMIT");
	sqlite3_close(mk_db);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--compact") == 0)
		return mk_compact(argv[2]);
	if (argc == 5 && strcmp(argv[1], "--mutate") == 0)
		return mk_mutate(argv[2], strtoull(argv[3], NULL, 10), (unsigned)atoi(argv[4]));
	mk_find_ips();
	if (argc == 2 && strcmp(argv[1], "--sites") == 0) {
		for (int k = 0; k < MK_SITES; k++)
			printf("%d %d mk_sites\n", k, mk_site_line[k]);
		return 0;
	}
	int bench = argc == 5 && strcmp(argv[1], "--bench") == 0;
	if (argc != 2 && !bench) {
		fprintf(stderr, "usage: mkprofile OUT.db < SPEC | mkprofile --sites | mkprofile --bench OUT.db N THREADS"
				" | mkprofile --compact DB | mkprofile --mutate DB SEED N\n");
		return 2;
	}
	const char *out = argv[bench ? 2 : 1];
	unlink(out);
	if (sqlite3_open(out, &mk_db) != SQLITE_OK)
		mk_die(out);
	mk_exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN");
	mk_prepare();
	if (bench)
		mk_bench(strtoull(argv[3], NULL, 10), (unsigned)atoi(argv[4]));
	else
		mk_spec();
	sqlite3_finalize(mk_ev_st);
	mk_exec("COMMIT; PRAGMA journal_mode=DELETE");
	sqlite3_close(mk_db);
	return 0;
}
