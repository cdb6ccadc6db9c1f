"""Line attribution in every kind of frame (progs/frames.py), on both interpreters:
generator, coroutine (asyncio), recursion 600 deep, lambda, class body, nested
function, finally block after an exception, a call spread over several lines, a
function called from one generator object after another. Each
allocates bytearray(10000 + i) at its own line: exactly 56 + 10000 + i + 1 bytes in 2
blocks there (+ at most a list resize where the result is appended to a list). A
function's cells, made before its frame is complete, are its caller's: 1000 calls make
1000 cells at the calling line (+ the list's resizes), none at the function's own.
The 600-deep recursion's stack keeps its innermost 128 frames, then the truncation
marker."""
import json

import harness
from pycommon import funcname, line_rows, one, prog, pythons, tag, version

PROG = prog("frames.py")
# marker: (size, how many, function at that line, list slack)
CASES = {
    "gen": (10001, 3, "gen", 0),
    "coro": (10002, 1, "coro", 256),
    "coro2": (10003, 1, "coro", 0),
    "deep": (10004, 1, "deep", 0),
    "lambda": (10005, 1, "<lambda>", 0),
    "class": (10006, 1, "K", 0),
    "inner": (10007, 1, "outer.<locals>.inner", 0),
    "finally": (10008, 1, "fin", 256),
    "multi": (10009, 1, "multi", 0),
}


def check(py):
    w = tag(py)
    p, files = harness.profile([py, PROG], check_rc=0)
    harness.expect_eq(p.stdout, b"12\n", w + " stdout")
    db = one(files, w)
    rows = harness.report_rows(db)
    for marker, (size, n, func, slack) in CASES.items():
        line = harness.line_of(PROG, "# L:%s" % marker)
        # The row of that function at that line (the lambda's line also has a row for
        # <module>, which makes the function object).
        func = funcname(py, func)
        rs = [r for r in line_rows(rows, PROG, line) if r["function"] == func]
        if len(rs) != 1:
            raise AssertionError("%s %s: no row of %s at line %d: %s" % (w, marker, func, line, line_rows(rows, PROG, line)))
        want = n * (56 + size + 1)
        got = rs[0]["allocated_bytes"]
        blocks = rs[0]["allocations"]
        if not want <= got <= want + slack or not 2 * n <= blocks <= 2 * n + (1 if slack else 0):
            raise AssertionError("%s %s (line %d): %d bytes in %d blocks, want %d in %d" % (
                w, marker, line, got, blocks, want, 2 * n))
    cells = harness.line_of(PROG, "# L:cells")
    rs = [r for r in line_rows(rows, PROG, cells) if r["function"] == "make_cells"]
    if len(rs) != 1 or not 1000 <= rs[0]["allocations"] <= 1100:
        raise AssertionError("%s cells at the calling line %d: %s" % (w, cells, rs))
    # (3.13 allocates twice at with_cell's RESUME, on its def line, after the prologue)
    celldef = harness.line_of(PROG, "# L:celldef")
    rs = [r for r in line_rows(rows, PROG, celldef) if r["function"] == "with_cell"]
    if rs and (version(py) < (3, 13) or rs[0]["allocations"] > 4):
        raise AssertionError("%s allocations at with_cell's first line %d: %s" % (w, celldef, rs))
    # moved(): leaf's 200 bytearrays, 100 under each generator's line, none elsewhere
    leafline = harness.line_of(PROG, "# L:leaf")
    folded = harness.analyze("flamegraph", "--format=folded", "--metric=allocated", db)
    under = {}
    for l in folded.splitlines():
        stack, n = l.rsplit(" ", 1)
        frames = stack.split(";")
        if frames[-1].startswith("%s:%d " % (PROG, leafline)):
            under[frames[-2]] = under.get(frames[-2], 0) + int(n)
    want = {"%s:%d %s" % (PROG, harness.line_of(PROG, "# L:" + marker), func): 100 * (56 + size + 1)
            for marker, func, size in (("gena", "gen_a", 10010), ("genb", "gen_b", 10011))}
    harness.expect_eq(under, want, w + " leaf's bytes under each generator")
    deepline = harness.line_of(PROG, "# L:deep")
    stacks = json.loads(harness.analyze("leaks", "--format=json", "--limit=0", db))["stacks"]
    deep = [s["frames"] for s in stacks
            if s["frames"] and (s["frames"][0]["function"], s["frames"][0]["line"]) == ("deep", deepline)]
    harness.expect_eq(len(deep), 1, w + " stacks of the 600-deep allocation")
    frames = deep[0]
    harness.expect_eq([(f["function"], f["line"]) for f in frames[:128]],
                      [("deep", deepline)] + [("deep", deepline + 1)] * 127, w + " the innermost 128 frames")
    harness.expect_eq((len(frames), frames[-1]["function"], frames[-1].get("truncated")),
                      (129, "[frames not recorded]", True), w + " the truncation marker after them")


def test_frames_both_pythons():
    for py in pythons():
        check(py)


PROLOGUE = prog("prologue.py")


def check_prologue(py):
    """progs/prologue.py: an incomplete frame that is not the innermost is left out too.
    bytearray(54321) is 54,378 bytes; of the 1000 collections, all but the first few run
    inside with_cell's prologue (the first ones can fall elsewhere while the
    collector's counts settle)."""
    w = tag(py) + " prologue"
    p, files = harness.profile([py, PROLOGUE], check_rc=0)
    harness.expect_eq(p.stdout, b"done\n", w + " stdout")
    db = one(files, w)
    call = harness.line_of(PROLOGUE, "# L:call")
    dl = harness.line_of(PROLOGUE, "# L:del")
    celldef = harness.line_of(PROLOGUE, "# L:celldef")
    folded = harness.analyze("flamegraph", "--format=folded", "--metric=allocated", db)
    if version(py) >= (3, 12):
        # 3.12 on collects at the next check of the eval loop, with_cell's RESUME past
        # its prologue: its frame is complete there, and the stack holds it
        want = "%s:%d <module>;%s:%d with_cell;%s:%d D.__del__ " % (PROLOGUE, call, PROLOGUE, celldef, PROLOGUE, dl)
    else:
        # (before 3.11 the cells are made before the frame is pushed)
        want = "%s:%d <module>;%s:%d %s " % (PROLOGUE, call, PROLOGUE, dl, funcname(py, "D.__del__"))
    direct = [int(l.rsplit(" ", 1)[1]) for l in folded.splitlines() if l.startswith(want)]
    if version(py) < (3, 11):
        # 3.9 and 3.10 make the cell before they push with_cell's frame, and collect at the
        # closure's MAKE_FUNCTION (line celldef + 3) as well: about half the collections
        # fall at each, every one of them in a complete frame
        inner = "%s:%d <module>;%s:%d with_cell;%s:%d __del__ " % (PROLOGUE, call, PROLOGUE, celldef + 3,
                                                                  PROLOGUE, dl)
        later = [int(l.rsplit(" ", 1)[1]) for l in folded.splitlines() if l.startswith(inner)]
        if len(direct) != 1 or len(later) != 1 or not 400 * 54378 <= direct[0] <= 600 * 54378 or \
                not 990 * 54378 <= direct[0] + later[0] <= 1000 * 54378 + 64:
            raise AssertionError("%s: bytes at the calling line then __del__: %s, at the closure: %s" % (
                w, direct, later))
    elif len(direct) != 1 or not 990 * 54378 <= direct[0] <= 1000 * 54378:
        raise AssertionError("%s: bytes at the calling line then D.__del__: %s" % (w, direct))
    bad = [l for l in folded.splitlines() if "%s:%d with_cell" % (PROLOGUE, celldef) in l]
    if bad and version(py) < (3, 12):
        raise AssertionError("%s: with_cell's incomplete frame recorded: %s" % (w, bad[:3]))


def test_prologue_both_pythons():
    for py in pythons():
        check_prologue(py)


RECENTRY = prog("recentry.py")


def check_recentry(py):
    """progs/recentry.py: a frame at lasti -1 (RecursionError raised as it is pushed) is
    left out: each of the 200 errors allocates at r's calling line, and the deepest
    stack holds as many frames of r as the error's traceback."""
    w = tag(py) + " recursion at entry"
    p, files = harness.profile([py, RECENTRY], check_rc=0)
    caught, depth = map(int, p.stdout.split())
    harness.expect_eq(caught, 200, w + " errors caught")
    db = one(files, w)
    rcall = harness.line_of(RECENTRY, "# L:rcall")
    rows = [r for r in line_rows(harness.report_rows(db), RECENTRY, rcall) if r["function"] == "r"]
    if len(rows) != 1 or rows[0]["allocations"] < 200:
        raise AssertionError("%s: allocations at r's call line %d: %s" % (w, rcall, rows))
    folded = harness.analyze("flamegraph", "--format=folded", "--metric=allocated", db)
    deepest = max(l.rsplit(" ", 1)[0].count(" r;") + l.rsplit(" ", 1)[0].endswith(" r")
                  for l in folded.splitlines() if RECENTRY in l)
    # 3.13 raises the error at the new frame's first instruction (instr_ptr at offset 0:
    # complete, as CPython's own frame APIs tell), which the traceback leaves out
    harness.expect_eq(deepest, depth + (version(py) >= (3, 13)), w + " frames of r in the deepest stack (the traceback's)")


def test_recursion_at_entry_both_pythons():
    for py in pythons():
        check_recentry(py)


if __name__ == "__main__":
    harness.run(globals())
