/* Offline symbolization of native instruction pointers through elfutils libdw.
 * Owns one Dwfl per profile; every address is resolved once and cached. */
#ifndef MEMPROF_ANALYZER_SYMBOLIZE_H
#define MEMPROF_ANALYZER_SYMBOLIZE_H

#include <stdint.h>

typedef struct symbolizer symbolizer_t;

typedef struct sym_frame {
	const char *function; /* demangled where possible; NULL if unknown */
	const char *file;     /* source file from debug info, NULL if none */
	int line;             /* 0 if none */
	const char *module;   /* path of the loaded object, NULL if the ip is in none */
	uint64_t offset;      /* ip - module base (load bias) */
} sym_frame_t;

symbolizer_t *symbolize_new(void);
/* One loaded object as recorded in the `modules` table. */
void symbolize_add_module(symbolizer_t *s, const char *path, const char *build_id, uint64_t base,
			  uint64_t lo, uint64_t hi);
/* Resolves a return address (ip - 1 is looked up) into frames, innermost first: inlined
 * functions come before the function they were inlined into. Returns the count (>= 1);
 * the frames stay valid until symbolize_free. Never fails: unknown addresses give one
 * frame with function NULL, module/offset where known. */
int symbolize_ip(symbolizer_t *s, uint64_t ip, const sym_frame_t **out);
void symbolize_free(symbolizer_t *s);

#endif
