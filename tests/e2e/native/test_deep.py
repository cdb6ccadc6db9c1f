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


def split_marker(frames):
    """The frames of a stack and whether it ends with the truncation marker."""
    if frames and frames[-1].get("truncated"):
        expect_eq(frames[-1]["function"], "[frames not recorded]", "the truncation marker's name")
        return frames[:-1], True
    return frames, False


def test_depth_limits():
    for depth, want in ((None, 64), (1, 1), (3, 3), (100, 100), (256, 256)):
        db = run(depth)
        rows = harness.report_rows(db)
        expect_row(rows, SRC, L["DEEP"], "deep allocation, depth %s" % depth, allocations=1, allocated_bytes=1111,
                   end_bytes=1111)
        expect_row(rows, SRC, L["SHALLOW"], "shallow allocation, depth %s" % depth, allocations=1,
                   allocated_bytes=2222, end_bytes=2222)
        frames, cut = split_marker(peak_stacks(db)[1111])
        expect_eq((len(frames), cut), (want, True),
                  "frames kept of a 500-deep stack with MEMPROF_MAX_DEPTH=%s, then the truncation marker" % depth)
        expect_eq([(f["function"], f["line"]) for f in frames],
                  [("down", L["DEEP"])] + [("down", RECURSE)] * (want - 1), "innermost frames")
        shallow, cut = split_marker(peak_stacks(db)[2222])
        expect_eq((shallow[0]["function"], shallow[0]["line"]), ("main", L["SHALLOW"]), "shallow innermost frame")
        expect_eq((len(shallow), cut), (min(4, want), want < 4),
                  "frames of main's allocation (main, 2 libc start frames, _start), marked when cut short")


def test_whole_stack_unmarked():
    """A stack that fits is whole: no marker, and it ends at _start (10 + 1 frames of
    down, main, 2 libc start frames, _start), also exactly at the limit."""
    for depth in (None, 15):
        db = run(depth, n=10)
        frames, cut = split_marker(peak_stacks(db)[1111])
        expect_eq((len(frames), cut), (15, False), "a 15-frame stack, MEMPROF_MAX_DEPTH=%s" % depth)
        expect_eq(frames[-1]["function"], "_start", "outermost frame")
    db = run(14, n=10)
    frames, cut = split_marker(peak_stacks(db)[1111])
    expect_eq((len(frames), cut), (14, True), "the same stack one frame over MEMPROF_MAX_DEPTH=14")


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
