"""A parent and two forked workers whose memory adds up in known amounts at known times
(test_merge). Prints the pids as JSON.

  the parent holds 16 MiB (A) from the start to the end;
  worker 1 allocates 48 MiB (C) and exits without freeing it (os._exit: no teardown);
  then the parent allocates 40 MiB (D), and worker 2 allocates 24 MiB (B) while the
  parent holds A and D: the peak of all three together, A + D + B = 80 MiB (worker 1's
  48 MiB are gone by then: counting them would make it 128 MiB, with C in it);
  worker 2 holds B for 0.3 s (RSS samples see it), frees it and exits; the parent frees D.
"""
import json
import os
import sys
import time

MIB = 1 << 20


def worker(nbytes, leak, ready):
    buf = bytearray(nbytes)  # worker block
    os.write(ready, b"x")
    if not leak:
        time.sleep(0.3)
        del buf
    os._exit(0)


def main():
    a = bytearray(16 * MIB)  # parent block A
    r, w = os.pipe()
    pids = []
    pid = os.fork()
    if pid == 0:
        worker(48 * MIB, True, w)  # worker 1: C, never freed
    os.read(r, 1)
    os.waitpid(pid, 0)
    pids.append(pid)
    d = bytearray(40 * MIB)  # parent block D
    pid = os.fork()
    if pid == 0:
        worker(24 * MIB, False, w)  # worker 2: B
    os.read(r, 1)
    os.waitpid(pid, 0)
    pids.append(pid)
    del d
    json.dump({"parent": os.getpid(), "workers": pids}, sys.stdout)
    del a


main()
