"""tracemalloc as the oracle, on real library code (json's C and pure-Python encoders,
json's decoder, base64), on both interpreters. progs/jsonwork.py runs (a) under memprof
and (b) without it, with tracemalloc started at its top, printing tracemalloc's totals
and the top lines of snapshots taken at the peak and at the end of the program.

What differs between the two, and why the tolerances are what they are:
- tracemalloc only sees what is allocated after tracemalloc.start(); memprof sees the
  whole process (interpreter start-up, site, the `import tracemalloc` line). So totals
  are compared with --focus=PROG (everything allocated under a frame of the program)
  restricted to the program's lines after start(): exactly what tracemalloc traces.
- tracemalloc does not trace its own memory, and memprof does not see the snapshot
  code (it does not run under memprof): the snapshots are taken after the figures they
  are compared with, and the program's own checkpoint() allocations are a few KB.
- tracemalloc's peak is the maximum of its own total; memprof's figure is the focused
  rows at the moment of the whole heap's peak. Start-up memory does not change during
  the run, so both are the same moment: after json.loads (the program checks that the
  snapshot is taken at the peak: tracemalloc's current there equals its peak).
- Both count the sizes Python asked for (not malloc's usable size), object by object.
Measured: the totals agree within 0.05% and each top line within 0.01%; 2% for lines
and 3% for totals leave room for the interpreter's free lists and GC timing while a
missing or double-counted allocator (the decoder's 28 MB, the 5.7 MB strings) is far
outside it."""
import json

import harness
from pycommon import line_sum, one, prog, pythons, tag

PROG = prog("jsonwork.py")
TOL_TOTAL = 0.03
TOL_LINE = 0.02


def near(got, want, tol, what):
    if abs(got - want) > tol * want:
        raise AssertionError("%s: memprof %d, tracemalloc %d (%.2f%%, tolerance %.0f%%)" % (
            what, got, want, 100.0 * (got - want) / want, 100 * tol))


def by_location(rows, field):
    """{(file, line): sum of field} over the report's rows (one row per function)."""
    out = {}
    for r in rows:
        k = (r["file"], r["line"])
        out[k] = out.get(k, 0) + r[field]
    return out


def check(py):
    w = tag(py)
    plain = harness.run_plain([py, PROG, "--tracemalloc"])
    harness.expect_eq(plain.returncode, 0, w + " tracemalloc run: " + plain.stderr.decode()[-500:])
    tm = json.loads(plain.stdout)
    p, files = harness.profile([py, PROG], check_rc=0)
    harness.expect_eq(p.stdout, b"60000\n", w + " stdout")
    db = one(files, w)
    st = harness.stats(db)
    harness.expect_eq(st["dropped_events"], 0, w + " dropped")
    harness.expect_eq(st["end_marker"], True, w + " end_marker")

    # The snapshot is at the peak (else the per-line comparison below compares two
    # different moments): current == peak there, give or take the checkpoint's own bytes.
    tpk = tm["peak"]
    if tpk["current"] < tpk["peak"] - 64 * 1024:
        raise AssertionError("%s tracemalloc snapshot not at the peak: %r" % (w, tpk))

    # Totals: the program's lines after tracemalloc.start(), with everything under them.
    start = harness.line_of(PROG, "tracemalloc.start()")
    focus = harness.report_rows(db, "--focus=" + PROG)
    mine = [r for r in focus if r["file"] == PROG and r["line"] > start]
    near(sum(r["peak_bytes"] for r in mine), tpk["peak"], TOL_TOTAL, w + " peak total")
    near(sum(r["end_bytes"] for r in mine), tm["end"]["current"], TOL_TOTAL, w + " end total")
    # memprof's global peak holds that and the start-up memory on top (a few MB).
    if not tpk["peak"] <= st["peak_heap_bytes"] <= tpk["peak"] + 16 * 1024 * 1024:
        raise AssertionError("%s peak_heap_bytes %d vs tracemalloc peak %d" % (w, st["peak_heap_bytes"], tpk["peak"]))

    # Top lines at the peak: innermost frame on both sides (tracemalloc 'lineno').
    rows = harness.report_rows(db)
    peak_at = by_location(rows, "peak_bytes")
    t5 = [(f, l) for f, l, size, count in tpk["top"][:5]]
    m5 = [k for k, v in sorted(peak_at.items(), key=lambda kv: -kv[1])[:5]]
    if set(t5) != set(m5):
        raise AssertionError("%s top-5 lines at the peak differ:\n tracemalloc %s\n memprof     %s" % (w, t5, m5))
    for f, l, size, count in tpk["top"][:5]:
        near(peak_at[(f, l)], size, TOL_LINE, "%s peak bytes at %s:%d" % (w, f, l))
    # The five are the work of the program, in the libraries it calls.
    for lib in ("json/decoder.py", "json/encoder.py", "base64.py"):
        if not any(f.endswith(lib) for f, l in t5):
            raise AssertionError("%s %s not among the top lines: %s" % (w, lib, t5))
    if harness.line_of(PROG, "# L:build") not in [l for f, l in t5 if f == PROG]:
        raise AssertionError("%s build line not among the top lines: %s" % (w, t5))

    # At the end only json.loads' result is left: the same top line, the same bytes.
    f, l, size, count = tm["end"]["top"][0]
    if not f.endswith("json/decoder.py"):
        raise AssertionError("%s tracemalloc's top line at the end: %r" % (w, tm["end"]["top"][0]))
    near(line_sum(rows, f, l, "end_bytes"), size, TOL_LINE, "%s end bytes at %s:%d" % (w, f, l))
    end_at = by_location(rows, "end_bytes")
    if max(end_at, key=end_at.get) != (f, l):
        raise AssertionError("%s memprof's top line at the end is %r" % (w, max(end_at, key=end_at.get)))


def test_tracemalloc_oracle_json():
    for py in pythons():
        check(py)


if __name__ == "__main__":
    harness.run(globals())
