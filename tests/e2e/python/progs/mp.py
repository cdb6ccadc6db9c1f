"""Processes: `mp.py METHOD` starts two multiprocessing workers with that start method
(fork, spawn, forkserver), each allocating WORKER_BASE + i bytes at a known line, and
prints, as JSON, the pids of every Python process involved (parent, workers, forkserver,
resource tracker). `mp.py subprocess` runs child.py with the same interpreter and two
non-Python programs (sh, and git if present) instead."""
import json
import multiprocessing
import os
import shutil
import subprocess
import sys

PARENT_N = 7000003
WORKER_BASE = 9000000


def work(i, q):
    buf = bytearray(WORKER_BASE + i)  # L:worker
    q.put((i, os.getpid(), len(buf)))


def main(method):
    global keep  # alive at the end of the program
    keep = bytearray(PARENT_N)  # L:parent
    pids = {"parent": os.getpid(), "workers": {}}
    if method == "subprocess":
        child = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")
        out = subprocess.run([sys.executable, child], capture_output=True, text=True, check=True)
        pids["child"] = int(out.stdout)
        subprocess.run(["sh", "-c", "true"], check=True)
        pids["git"] = bool(shutil.which("git"))
        if pids["git"]:
            subprocess.run(["git", "--version"], check=True, capture_output=True)
    else:
        ctx = multiprocessing.get_context(method)
        q = ctx.Queue()
        procs = [ctx.Process(target=work, args=(i, q)) for i in range(2)]
        for p in procs:
            p.start()
        for _ in procs:
            i, pid, n = q.get()
            pids["workers"][i] = pid
        for p in procs:
            p.join()
            assert p.exitcode == 0, p.exitcode
        if method == "forkserver":
            from multiprocessing import forkserver
            pids["forkserver"] = forkserver._forkserver._forkserver_pid
        from multiprocessing import resource_tracker
        pids["resource_tracker"] = resource_tracker._resource_tracker._pid
    print(json.dumps(pids))
    return len(keep)


if __name__ == "__main__":
    main(sys.argv[1])
