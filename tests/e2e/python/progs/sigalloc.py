"""A C signal handler (cext.c, cext_alarm_start) that maps and unmaps 128 MiB + 4 KiB
("mmap"), or mallocs and frees 1,000 bytes ("malloc"), every 100 microseconds, or maps
and unmaps 40 times in a row every millisecond ("burst"), while Python allocates and
frees small objects at full speed: most signals land while the thread is inside
memprof. With "maps" after the count, each step also maps and unmaps 64 KiB (Python's
mmap module); after that, the signals' period in microseconds. Prints the count of the
handler's blocks."""
import ctypes
import mmap
import sys

cext = ctypes.CDLL(sys.argv[1])
cext.cext_alarm_stop.restype = ctypes.c_long
how = {"mmap": 0, "malloc": 1, "burst": 2}[sys.argv[2]]


def work(n, maps):
    ring = [None] * 100
    for i in range(n):
        if maps:
            mmap.mmap(-1, 1 << 16).close()
        ring[i % 100] = bytes(64) + str(i).encode()


usec = int(sys.argv[5]) if len(sys.argv) > 5 else 1000 if how == 2 else 100
cext.cext_alarm_start(usec, how)
work(int(sys.argv[3]), sys.argv[4:5] == ["maps"])
print("handled", cext.cext_alarm_stop())
