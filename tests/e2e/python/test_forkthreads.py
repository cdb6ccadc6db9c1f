"""fork() while other threads allocate (progs/forkthreads.py), on both interpreters, a
few times over: no child hangs, every child writes its own intact file holding its own
allocation and nothing of the threads that did not survive the fork; the parent's file
holds the threads' work and none of the children's."""
import os

import harness
from pycommon import line_sum, prog, pythons, tag

PROG = prog("forkthreads.py")
N = 20
CHILD_N = 3000007
ROUNDS = 3


def check(py, d):
    w = tag(py)
    p, files = harness.profile([py, PROG], cwd=d, check_rc=0, timeout=120)
    pids = [int(x) for x in p.stdout.split()]
    harness.expect_eq(len(pids), N, w + " children")
    by_name = {os.path.basename(f): f for f in files}
    cl = harness.line_of(PROG, "# L:child")
    churn = [harness.line_of(PROG, "# L:churn"), harness.line_of(PROG, "# L:cchurn")]
    for pid in pids:
        f = by_name.get("memprof.%d.db" % pid)
        if not f:
            raise AssertionError("%s no file for child %d: %s" % (w, pid, sorted(by_name)))
        st = harness.stats(f)
        harness.expect_eq(st["status"], "complete", "%s child %d status" % (w, pid))
        rows = harness.report_rows(f)
        got = line_sum(rows, PROG, cl, "allocated_bytes")
        if not CHILD_N <= got <= CHILD_N + 1024:
            raise AssertionError("%s child %d: %d bytes at the child line" % (w, pid, got))
        for line in churn:
            if line_sum(rows, PROG, line, "allocations"):
                raise AssertionError("%s child %d has allocations of the parent's threads (line %d)" % (w, pid, line))
    harness.expect_eq(len(files), N + 1, w + " files")
    parent = [f for f in files if harness.stats(f)["pid"] not in pids]
    harness.expect_eq(len(parent), 1, w + " the parent's file")
    harness.expect_eq(harness.stats(parent[0])["end_marker"], True, w + " parent end_marker")
    rows = harness.report_rows(parent[0])
    harness.expect_eq(line_sum(rows, PROG, cl, "allocations"), 0, w + " child line in the parent's file")
    for line in churn:
        if line_sum(rows, PROG, line, "allocations") < 1:
            raise AssertionError("%s the parent's file lacks the threads' line %d" % (w, line))


def test_fork_while_threads_allocate():
    for py in pythons():
        for r in range(ROUNDS):
            d = os.path.abspath("%s-%d" % (py.replace("/", "_"), r))
            os.mkdir(d)
            check(py, d)


if __name__ == "__main__":
    harness.run(globals())
