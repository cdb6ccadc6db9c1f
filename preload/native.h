/* Native stack capture with libunwind's fast path (unw_backtrace and its cached unwind
 * info). Instruction pointers are recorded raw and symbolized later by the analyzer. */
#ifndef MEMPROF_PRELOAD_NATIVE_H
#define MEMPROF_PRELOAD_NATIVE_H

#include <stdbool.h>
#include <stdint.h>

int native_init(void);
/* Fills ips[] innermost first with up to max return addresses of the caller's stack,
 * memprof's own frames left out. Returns the count. With `exact`, libunwind is asked for
 * only as many frames more than max as memprof's own frames have been seen to take, so
 * fewer than max may come back although the stack goes on; *whole (if not NULL) tells
 * whether the unwind reached the end of the stack. */
unsigned native_backtrace(uint64_t *ips, unsigned max, bool exact, bool *whole);
/* Turns ips[0..n) from native_backtrace (innermost first) into stack frames outermost
 * first (stack_intern's order), in place. */
void native_frames(uint64_t *ips, unsigned n);
/* True if ip lies in libmemprof.so itself. */
int native_is_self(uint64_t ip);

#endif
