/* Built with -flto -O2 -g into libtest_symbolize_lto.so with test_symbolize_lto_b.c:
 * link-time optimization inlines test_symbolize_lto_inner (this unit) into
 * test_symbolize_lto_outer (the other unit), and the inline's DWARF in the unit GCC makes
 * at link time points at its abstract origin here, in another unit. libdw's
 * dwarf_getscopes gave no inline chain there; test_symbolize.c expects the chain. */
#include <stdint.h>

uint64_t test_symbolize_lto_capture(void);
__attribute__((visibility("hidden"))) uint64_t test_symbolize_lto_inner(int *line);

__attribute__((noinline, visibility("default"))) uint64_t test_symbolize_lto_capture(void)
{
	return (uint64_t)(uintptr_t)__builtin_return_address(0);
}

/* hidden: a call to it from the other unit can be inlined (no interposition) */
__attribute__((visibility("hidden"))) uint64_t test_symbolize_lto_inner(int *line)
{
	uint64_t ra = test_symbolize_lto_capture(); *line = __LINE__;
	return ra;
}
