/* See test_symbolize_lto_a.c. */
#include <stdint.h>

__attribute__((visibility("hidden"))) uint64_t test_symbolize_lto_inner(int *line);
uint64_t test_symbolize_lto_outer(int *inner_line, int *call_line);

__attribute__((noinline, visibility("default"))) uint64_t test_symbolize_lto_outer(int *inner_line, int *call_line)
{
	uint64_t ra = test_symbolize_lto_inner(inner_line); *call_line = __LINE__;
	return ra;
}
