/* Offline symbolization of native instruction pointers through elfutils libdw.
 * Owns the Dwfl sessions of a profile's modules; every address is resolved once (per
 * module it is found in) and cached. */
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
/* One loaded object as recorded in the `modules` table, first seen in module generation
 * gen (the full counter; memprof/format.h). Modules may overlap in address when they
 * were loaded in different generations. */
void symbolize_add_module_gen(symbolizer_t *s, const char *path, const char *build_id, uint64_t base,
			      uint64_t lo, uint64_t hi, uint64_t gen);
/* The same in generation 0. */
void symbolize_add_module(symbolizer_t *s, const char *path, const char *build_id, uint64_t base,
			  uint64_t lo, uint64_t hi);
/* Resolves a native stack frame (memprof/format.h: a return address, with the module
 * generation it was captured in in the high bits; a plain address is a frame of
 * generation 0) into frames, innermost first: inlined functions come before the function
 * they were inlined into. The module is the one holding ip - 1 that was first seen
 * latest at or before the frame's generation (mp_frame_gen_distance; of equal ones, the
 * one added last). Returns the count (>= 1); the frames stay valid until symbolize_free.
 * Never fails: unknown addresses give one frame with function NULL, module/offset where
 * known (offset from the plain address). */
int symbolize_ip(symbolizer_t *s, uint64_t frame, const sym_frame_t **out);
void symbolize_free(symbolizer_t *s);

#endif
