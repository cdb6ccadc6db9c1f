/* regframe: registers unwind information of its own (as a JIT does, with
 * __register_frame: here the program's own .eh_frame again), then unwinds with libgcc
 * (_Unwind_Backtrace, as a C++ throw does). libgcc (GCC 12) then holds its object mutex
 * while it allocates; memprof's hook for that allocation must not call back into
 * libgcc's FDE look-up (it did: the program hung). Prints the frames it unwound. */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unwind.h>

extern void __register_frame(void *);
extern void __deregister_frame(void *);

/* The executable's .eh_frame, from the pointer at the start of its .eh_frame_hdr. */
static int find_eh_frame(struct dl_phdr_info *info, size_t size, void *arg)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		if (info->dlpi_phdr[i].p_type != PT_GNU_EH_FRAME)
			continue;
		const uint8_t *hdr = (const uint8_t *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
		if (hdr[1] != 0x1b) /* pcrel | sdata4, what linkers write */
			return 1;
		int32_t off;
		memcpy(&off, hdr + 4, 4);
		*(const void **)arg = hdr + 4 + off;
		return 1;
	}
	return 0;
}

static _Unwind_Reason_Code count(struct _Unwind_Context *ctx, void *arg)
{
	++*(int *)arg;
	return _URC_NO_REASON;
}

int main(void)
{
	void *eh = NULL;
	free(malloc(10));
	dl_iterate_phdr(find_eh_frame, &eh); /* the first object is the executable */
	if (!eh) {
		fprintf(stderr, "no .eh_frame_hdr\n");
		return 1;
	}
	__register_frame(eh);
	int n = 0;
	_Unwind_Backtrace(count, &n);
	__deregister_frame(eh);
	printf("unwound %s\n", n > 1 ? "several frames" : "too few frames");
	return 0;
}
