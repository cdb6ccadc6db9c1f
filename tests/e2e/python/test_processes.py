"""Process following, on both interpreters. progs/mp.py with multiprocessing's three
start methods: every Python process (parent, the two workers, the forkserver and the
resource tracker where the method starts them) writes its own file, named by its own
pid, never colliding; each worker's allocation is in its own file at the worker line,
the parent's file is intact and holds none of it. With subprocess: a Python child
writes its own file; non-Python children (sh, git) write none by default, and one each
with MEMPROF_FOLLOW=all."""
import json
import os
import re
import tempfile
import time

import harness
from pycommon import line_sum, one, prog, pythons, tag

PROG = prog("mp.py")
CHILD = prog("child.py")
PARENT_N = 7000003
WORKER_BASE = 9000000
CHILD_N = 5000001
BYTEARRAY = 56 + 1  # object header + the buffer's NUL (3.11)


def wait_gone(pids, timeout=30):
    """The forkserver and the resource tracker outlive the parent a little (they exit
    when its pipes close): wait until they are gone (or zombies) before reading files."""
    deadline = time.time() + timeout
    for pid in pids:
        while time.time() < deadline:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except FileNotFoundError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("process %d still running after %ds" % (pid, timeout))


def files_by_pid(files):
    out = {}
    for f in files:
        m = re.fullmatch(r"memprof\.(\d+)\.db", os.path.basename(f))
        if not m:
            raise AssertionError("unexpected file name (a collision?): %s; all: %s" % (f, files))
        out[int(m.group(1))] = f
    return out


def run_method(py, method):
    w = "%s %s" % (tag(py), method)
    d = tempfile.mkdtemp(prefix="run-", dir=".")  # one directory a run: only its files
    d = os.path.abspath(d)
    p, _ = harness.profile([py, PROG, method], cwd=d, check_rc=0)
    pids = json.loads(p.stdout)
    workers = {int(i): pid for i, pid in pids["workers"].items()}
    harness.expect_eq(sorted(workers), [0, 1], w + " workers")
    expected = {pids["parent"]: "parent"}
    for i, pid in workers.items():
        expected[pid] = "worker%d" % i
    if method == "forkserver":
        expected[pids["forkserver"]] = "forkserver"
    if method in ("spawn", "forkserver"):  # both start a resource tracker
        if not pids["resource_tracker"]:
            raise AssertionError("%s no resource tracker pid" % w)
    if pids["resource_tracker"]:
        expected[pids["resource_tracker"]] = "resource_tracker"
    harness.expect_eq(len(expected), len(set(expected)), w + " distinct pids")
    wait_gone(expected)
    dbs = sorted(os.path.join(d, f) for f in os.listdir(d) if f.startswith("memprof."))
    # Every file is a finished SQLite database: no WAL or shared-memory file left over.
    leftovers = [f for f in dbs if not f.endswith(".db")]
    if leftovers:
        raise AssertionError("%s files left open: %s" % (w, leftovers))
    by_pid = files_by_pid(dbs)
    if set(by_pid) != set(expected):
        raise AssertionError("%s files for pids %s, expected %s" % (
            w, sorted(by_pid), sorted((pid, who) for pid, who in expected.items())))

    wl = harness.line_of(PROG, "# L:worker")
    pl = harness.line_of(PROG, "# L:parent")
    for pid, who in expected.items():
        db = by_pid[pid]
        st = harness.stats(db)
        harness.expect_eq(st["pid"], pid, "%s %s pid in meta" % (w, who))
        harness.expect_eq(st["status"], "complete", "%s %s status" % (w, who))
        harness.expect_eq(st["dropped_events"], 0, "%s %s dropped" % (w, who))
        rows = harness.report_rows(db)
        at_worker = line_sum(rows, PROG, wl, "allocated_bytes")
        at_parent = line_sum(rows, PROG, pl, "allocated_bytes")
        if who.startswith("worker"):
            n = WORKER_BASE + int(who[-1])
            peak = line_sum(rows, PROG, wl, "peak_bytes")
            if not n <= at_worker <= n + 1024 or not n <= peak <= n + 1024:
                raise AssertionError("%s %s worker line: allocated %d, peak %d, want %d" % (w, who, at_worker, peak, n + BYTEARRAY))
            harness.expect_eq(at_parent, 0, "%s %s allocations at the parent's line" % (w, who))
        else:
            harness.expect_eq(at_worker, 0, "%s %s allocations at the worker line" % (w, who))
        if who == "parent":
            harness.expect_eq(st["end_marker"], True, w + " parent end_marker")
            if not PARENT_N <= at_parent <= PARENT_N + 1024:
                raise AssertionError("%s parent line: %d" % (w, at_parent))
            if line_sum(rows, PROG, pl, "end_bytes") < PARENT_N:
                raise AssertionError("%s parent's block not alive at the end" % w)
            if st["peak_heap_bytes"] < PARENT_N or st["peak_heap_bytes"] >= PARENT_N + WORKER_BASE:
                raise AssertionError("%s parent peak %d holds a worker's block?" % (w, st["peak_heap_bytes"]))
        if who in ("forkserver", "resource_tracker"):
            harness.expect_eq(at_parent, 0, "%s %s allocations at the parent's line" % (w, who))
            if st["allocations"] < 1000:  # a whole Python interpreter
                raise AssertionError("%s %s has %d allocations" % (w, who, st["allocations"]))


def test_multiprocessing_fork():
    for py in pythons():
        run_method(py, "fork")


def test_multiprocessing_spawn():
    for py in pythons():
        run_method(py, "spawn")


def test_multiprocessing_forkserver():
    for py in pythons():
        run_method(py, "forkserver")


def run_subprocess(py, follow):
    w = "%s subprocess MEMPROF_FOLLOW=%s" % (tag(py), follow)
    env = {"MEMPROF_FOLLOW": follow} if follow else None
    p, files = harness.profile([py, PROG, "subprocess"], env=env, check_rc=0)
    pids = json.loads(p.stdout)
    by_cmd = {}
    for f in files:
        st = harness.stats(f)
        harness.expect_eq(st["status"], "complete", w + " status of " + f)
        by_cmd.setdefault(st["command"].split()[0] if not st["command"].startswith(py) else
                          os.path.basename(st["command"].split()[1]), []).append((f, st))
    want = {"mp.py": 1, "child.py": 1}
    if follow == "all":
        want["sh"] = 1
        if pids["git"]:
            want["git"] = 1
    harness.expect_eq({k: len(v) for k, v in by_cmd.items()}, want, w + " files by program")
    files_by_pid(files)  # one per pid, no collision suffix
    (child_db, child_st), = by_cmd["child.py"]
    harness.expect_eq(child_st["pid"], pids["child"], w + " child pid")
    cl = harness.line_of(CHILD, "# L:child")
    rows = harness.report_rows(child_db)
    got = line_sum(rows, CHILD, cl, "allocated_bytes")
    if not CHILD_N <= got <= CHILD_N + 1024:
        raise AssertionError("%s child line: %d" % (w, got))
    (parent_db, parent_st), = by_cmd["mp.py"]
    harness.expect_eq(parent_st["pid"], pids["parent"], w + " parent pid")
    prow = harness.report_rows(parent_db)
    if any(r["file"] == CHILD for r in prow):
        raise AssertionError("%s the child's lines are in the parent's file" % w)
    pl = harness.line_of(PROG, "# L:parent")
    if not PARENT_N <= line_sum(prow, PROG, pl, "allocated_bytes") <= PARENT_N + 1024:
        raise AssertionError("%s parent line" % w)
    for name in ("sh", "git"):
        for f, st in by_cmd.get(name, []):
            if st["allocations"] < 1:
                raise AssertionError("%s %s's file is empty" % (w, name))


def test_subprocess_default_follow():
    for py in pythons():
        run_subprocess(py, None)


def test_subprocess_follow_all():
    for py in pythons():
        run_subprocess(py, "all")


def test_subprocess_then_killed():
    """subprocess execs its child from a vfork child, which shares the parent's memory and
    runs memprof's exec hooks: the parent's file must not be marked complete by them."""
    prog_ = prog("vforkkill.py")
    for py in pythons():
        w = tag(py)
        # commits every 10 ms: the kill a second after the kept line leaves a margin of
        # 100 commit intervals for a writer slowed down by a loaded machine
        p, files = harness.profile([py, prog_], env={"MEMPROF_FLUSH_MS": "10"})
        harness.expect_eq(p.returncode, -9, w + " exit status")
        db = one(files, w)
        st = harness.stats(db)
        harness.expect_eq(st["status"], "running", w + " status of a killed run")
        rows = harness.report_rows(db)
        harness.expect_eq(line_sum(rows, prog_, harness.line_of(prog_, "# L:kept"), "allocated_bytes"),
                          3 * 1024 * 1024 + 57, w + " the kept line (a bytearray's header and NUL)")


def test_fork_child_time_starts_at_fork():
    """A forked child's time 0 is its fork: a child forked after the parent slept 1 s and
    living a few ms has a duration of a few ms, and its time series' wall-clock times
    (mprof) fall within its life (they were counted from the parent's start: 2.18 s for a
    child of 0.07 s, its curve placed after the parent had ended)."""
    code = ("import os, time\n"
            "time.sleep(1)\n"
            "t0 = time.time()\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    keep = bytearray(10 << 20)\n"
            "    os._exit(0)\n"
            "os.waitpid(pid, 0)\n"
            "print(t0, time.time(), pid)\n")
    for py in pythons():
        w = tag(py)
        p, files = harness.profile([py, "-c", code], check_rc=0)
        t0, t1, pid = p.stdout.split()
        t0, t1 = float(t0), float(t1)
        child = files_by_pid(files)[int(pid)]
        st = harness.stats(child)
        if not 0 <= st["duration_s"] < 0.5 or not 0 <= st["peak_time_s"] < 0.5:
            raise AssertionError("%s child's duration %.3f s, peak at %.3f s" % (w, st["duration_s"], st["peak_time_s"]))
        stamps = [float(l.split()[2]) for l in harness.analyze("timeseries", "--format=mprof", child).splitlines()
                  if l.startswith("MEM ")]
        if not stamps or not t0 - 0.05 <= min(stamps) <= max(stamps) <= t1 + 0.05:
            raise AssertionError("%s child's mprof times %s outside its life %.3f..%.3f" % (w, stamps, t0, t1))


if __name__ == "__main__":
    harness.run(globals())
