/* hugemem: zeroed memory for the analyzer's large tables probed at random (the address
 * map of live blocks, the per-stack figures, the splice map). From HUGEMEM_MIN bytes on,
 * a mapping of its own, aligned to and advised for transparent huge pages: a 4 KiB page
 * each would cost one page fault per page touched and, probed at random, a TLB miss on
 * most look-ups. Smaller ones come from calloc. Free with the same n and size. */
#ifndef MEMPROF_ANALYZER_HUGEMEM_H
#define MEMPROF_ANALYZER_HUGEMEM_H

#include <stddef.h>

#define HUGEMEM_MIN ((size_t)2 << 20)

/* n * size zeroed bytes, or NULL (also when n * size overflows). */
void *hugemem_calloc(size_t n, size_t size);
void hugemem_free(void *p, size_t n, size_t size);

#endif
