"""A C signal handler (cext.c, cext_alarm_start) that maps and unmaps 128 MiB + 4 KiB
("mmap"), or mallocs and frees 1,000 bytes ("malloc"), every 100 microseconds, or maps
and unmaps 40 times in a row every millisecond ("burst"), while Python allocates and
frees small objects at full speed: most signals land while the thread is inside
memprof. Prints the count of the handler's blocks."""
import ctypes
import sys

cext = ctypes.CDLL(sys.argv[1])
cext.cext_alarm_stop.restype = ctypes.c_long
how = {"mmap": 0, "malloc": 1, "burst": 2}[sys.argv[2]]


def work(n):
    ring = [None] * 100
    for i in range(n):
        ring[i % 100] = bytes(64) + str(i).encode()


cext.cext_alarm_start(1000 if how == 2 else 100, how)
work(int(sys.argv[3]))
print("handled", cext.cext_alarm_stop())
