"""A C signal handler (cext.c, cext_alarm_start) that maps and unmaps 128 MiB + 4 KiB,
or mallocs and frees 1,000 bytes, every 100 microseconds while Python allocates and
frees small objects at full speed: most signals land while the thread is inside
memprof. Prints the handler's count."""
import ctypes
import sys

cext = ctypes.CDLL(sys.argv[1])
cext.cext_alarm_stop.restype = ctypes.c_long
how = 0 if sys.argv[2] == "mmap" else 1


def work(n):
    ring = [None] * 100
    for i in range(n):
        ring[i % 100] = bytes(64) + str(i).encode()


cext.cext_alarm_start(100, how)
work(int(sys.argv[3]))
print("handled", cext.cext_alarm_stop())
