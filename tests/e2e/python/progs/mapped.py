"""Memory mapped by the program: a 64 MiB anonymous mmap.mmap alive at the peak, a 4 MiB
one closed at once, and 6.4 MB of small objects in pymalloc's arenas (mapped by Python's
arena allocator, which is not the program's mapping: recorded as the objects); and 2 MiB
mapped through libc's own handle with ctypes, alive at the end."""
import ctypes
import mmap


def make(n):
    return mmap.mmap(-1, n)  # L:map


def libc_map(n):
    libc = ctypes.CDLL("libc.so.6")
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                          ctypes.c_long]
    return libc.mmap(None, n, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)  # L:ctypes


def main():
    keep = make(64 << 20)  # L:keep
    keep[:4] = b"abcd"
    make(4 << 20).close()  # L:temp
    objs = [object() for _ in range(400000)]  # L:objs
    peak = len(objs)
    del objs
    keep.close()
    libc_map(2 << 20)
    print(peak)


main()
