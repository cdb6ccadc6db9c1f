"""Four threads allocating at distinct known lines at the same time, with the GIL held
(bytearrays) and without it (libc malloc through ctypes, which releases the GIL, and
a loop of malloc/free in C); then a
thread created in C (libmpcext.so) calling a Python callback."""
import ctypes
import sys
import threading

N = 20000          # bytearray(1000) per Python thread
M = 50             # libc mallocs per thread, GIL released
SIZES = [100003, 200003, 300007, 400009]
N_C = 3000         # callbacks from the C thread
M_C = 20000        # malloc/free in C per thread, without the GIL, while others hold it
C_SIZES = [1111, 2222, 3333, 4444]

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
cext = ctypes.CDLL(sys.argv[1])
cext.cext_alloc_many.argtypes = [ctypes.c_int, ctypes.c_size_t]
CB = ctypes.CFUNCTYPE(None, ctypes.c_int)
kept = {}
barrier = threading.Barrier(4)


def t0():
    barrier.wait()
    cext.cext_alloc_many(M_C, C_SIZES[0])  # L:c0
    mine, ptrs = kept.setdefault(0, ([], []))
    for i in range(N):
        mine.append(bytearray(1000))  # L:t0
        if i % (N // M) == 0:
            ptrs.append(libc.malloc(SIZES[0]))  # L:m0


def t1():
    barrier.wait()
    cext.cext_alloc_many(M_C, C_SIZES[1])  # L:c1
    mine, ptrs = kept.setdefault(1, ([], []))
    for i in range(N):
        mine.append(bytearray(1000))  # L:t1
        if i % (N // M) == 0:
            ptrs.append(libc.malloc(SIZES[1]))  # L:m1


def t2():
    barrier.wait()
    cext.cext_alloc_many(M_C, C_SIZES[2])  # L:c2
    mine, ptrs = kept.setdefault(2, ([], []))
    for i in range(N):
        mine.append(bytearray(1000))  # L:t2
        if i % (N // M) == 0:
            ptrs.append(libc.malloc(SIZES[2]))  # L:m2


def t3():
    barrier.wait()
    cext.cext_alloc_many(M_C, C_SIZES[3])  # L:c3
    mine, ptrs = kept.setdefault(3, ([], []))
    for i in range(N):
        mine.append(bytearray(1000))  # L:t3
        if i % (N // M) == 0:
            ptrs.append(libc.malloc(SIZES[3]))  # L:m3


from_c = []


def callback(i):
    from_c.append(bytearray(777))  # L:ccb


threads = [threading.Thread(target=f) for f in (t0, t1, t2, t3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
cb = CB(callback)
rc = cext.cext_run_thread(cb, N_C)
print("done", rc, sum(len(v[0]) for v in kept.values()), len(from_c))
