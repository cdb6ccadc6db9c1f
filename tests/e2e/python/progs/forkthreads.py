"""fork() while other threads allocate: two threads allocate continuously (one with the
GIL, one in libc malloc/free without it) while the main thread forks N children, each
allocating CHILD_N bytes at a known line and leaving with os._exit. No child may hang
(a lock held by another thread at fork time), every child writes its own file."""
import ctypes
import os
import sys
import threading

N = 20
CHILD_N = 3000007
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
stop = False


def py_churn():
    while not stop:
        x = [bytearray(100) for _ in range(100)]  # L:churn


def c_churn():
    while not stop:
        libc.free(libc.malloc(4096))  # L:cchurn


threads = [threading.Thread(target=py_churn), threading.Thread(target=c_churn)]
for t in threads:
    t.start()
pids = []
for i in range(N):
    pid = os.fork()
    if pid == 0:
        buf = bytearray(CHILD_N)  # L:child
        os._exit(0 if len(buf) == CHILD_N else 1)
    pids.append(pid)
bad = 0
for pid in pids:
    _, status = os.waitpid(pid, 0)
    bad += status != 0
stop = True
for t in threads:
    t.join()
print(" ".join(map(str, pids)))
sys.exit(1 if bad else 0)
