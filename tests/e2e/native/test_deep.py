"""Stack depth: MEMPROF_MAX_DEPTH keeps the innermost frames (the allocating line is still
named, whatever the depth), MEMPROF_NATIVE=0 records no stacks at all."""
import json

import harness
from harness import expect_eq
from native_common import expect_row, marks, one_file, prog, run_both, src

SRC = src("deep.c")
L = marks(SRC, "DEEP", "SHALLOW")
RECURSE = L["DEEP"] + 3  # the recursive call `int r = down(n - 1);`
assert "down(n - 1)" in open(SRC).read().splitlines()[RECURSE - 1]


def run(depth, n=500):
    env = {"MEMPROF_MAX_DEPTH": str(depth)} if depth else None
    p, files = run_both([prog("deep"), str(n)], env=env, expect_rc=0)
    expect_eq(p.stdout, b"deep %d %d\n" % (n, n // 2 + 1), "stdout")
    return one_file(files)


def peak_stacks(db):
    return {s["bytes"]: s["frames"] for s in json.loads(harness.analyze("peak", "--format=json", "--limit=0", db))["stacks"]}


def test_depth_limits():
    for depth, want in ((None, 64), (1, 1), (3, 3), (100, 100), (256, 256)):
        db = run(depth)
        rows = harness.report_rows(db)
        expect_row(rows, SRC, L["DEEP"], "deep allocation, depth %s" % depth, allocations=1, allocated_bytes=1111,
                   end_bytes=1111)
        expect_row(rows, SRC, L["SHALLOW"], "shallow allocation, depth %s" % depth, allocations=1,
                   allocated_bytes=2222, end_bytes=2222)
        frames = peak_stacks(db)[1111]
        expect_eq(len(frames), want, "frames kept of a 500-deep stack with MEMPROF_MAX_DEPTH=%s" % depth)
        expect_eq([(f["function"], f["line"]) for f in frames],
                  [("down", L["DEEP"])] + [("down", RECURSE)] * (want - 1), "innermost frames")
        shallow = peak_stacks(db)[2222]
        expect_eq((shallow[0]["function"], shallow[0]["line"]), ("main", L["SHALLOW"]), "shallow innermost frame")
        expect_eq(len(shallow), min(4, want), "frames of main's allocation (main, 2 libc start frames, _start)")


def test_no_native_stacks():
    p, files = run_both([prog("deep"), "500"], env={"MEMPROF_NATIVE": "0"}, expect_rc=0)
    db = one_file(files)
    rows = harness.report_rows(db)
    expect_eq([(r["line"], r["allocations"], r["allocated_bytes"]) for r in rows], [(0, 2, 3333)],
              "one row without a stack holding both allocations")
    s = harness.stats(db)
    expect_eq((s["allocations"], s["peak_heap_bytes"], s["end_bytes"]), (2, 3333, 3333), "stats")


if __name__ == "__main__":
    harness.run(globals())
