"""Memory allocated by C code called from Python: libc malloc through ctypes, and a C
function of a small shared library (cext_alloc) that calls malloc."""
import ctypes
import sys

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
cext = ctypes.CDLL(sys.argv[1])
cext.cext_alloc.restype = ctypes.c_void_p
cext.cext_alloc.argtypes = [ctypes.c_size_t]

N_LIBC = 3000017
N_CEXT = 5000011


def allocate():
    p = libc.malloc(N_LIBC)  # L:libc
    q = cext.cext_alloc(N_CEXT)  # L:cext
    return p, q


kept = allocate()
print("ok", bool(kept[0]), bool(kept[1]))
