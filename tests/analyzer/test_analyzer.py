#!/usr/bin/python3
"""End-to-end tests of `memprof` on synthetic profiles written by mkprofile.

usage: test_analyzer.py MEMPROF MKPROFILE

Every expected number below was worked out by hand from the event lists (see the
comments); the random test compares against a small reference model instead.
Standard library only; deterministic (fixed seeds, no clocks)."""
import csv
import hashlib
import io
import json
import math
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

MEMPROF, MKPROFILE = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
HERE = os.path.dirname(os.path.abspath(__file__))
TMP = tempfile.mkdtemp(prefix="memprof-test-", dir=os.getcwd())
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def eq(got, want, what):
    check(got == want, "%s: got %r, want %r" % (what, got, want))


def run(*args, timeout=60):
    p = subprocess.run([MEMPROF, *args], capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def ok(*args):
    rc, out, err = run(*args)
    eq(rc, 0, "exit status of memprof %s (stderr %r)" % (" ".join(args), err))
    return out


def mk(name, spec):
    path = os.path.join(TMP, name)
    p = subprocess.run([MKPROFILE, path], input=spec.encode(), capture_output=True)
    if p.returncode != 0:
        sys.exit("mkprofile failed for %s: %s" % (name, p.stderr.decode()))
    return path


def csv_rows(text):
    return list(csv.reader(io.StringIO(text)))


# ---------------------------------------------------------------------------------------
# The basic profile: 3 threads, interleaved timestamps, frees on other threads, an
# equal-timestamp FREE/ALLOC of the same address, an unmatched free, an address reused
# while live, an END marker, Python frames (hand-made and real 3.11 line tables), a
# native-only stack, RSS samples.
#
# clock: 1000 ticks/s, start at tick 1000 -> t(s) = (ts - 1000) / 1000
# code 1 /src/app.py main, firstlineno 10, hand-made table:
#   E9 00        code 13 (no columns), 2 units, line +0  -> lasti 0..1 = 10
#   EA 04        code 13, 3 units, line +2               -> lasti 2..4 = 12
#   D8 04 08     code 11 (one line, +1), 1 unit          -> lasti 5    = 13
#   F1 0A000103  code 14 (long form), 2 units, +5        -> lasti 6..7 = 18
#   F8           code 15 (no location), 1 unit           -> lasti 8    = none (0)
# code 3: the real co_linetable of f below (CPython 3.11); lasti 16 (CALL) is line 3
#   def f(n):
#       a = [0] * n
#       b = bytearray(n)
#       return a, b
BASIC_SPEC = """
meta command python3 app.py --x
meta pid 4242
meta status complete
meta clock tsc
meta clock_start_ticks 1000
meta clock_ticks_per_sec 1000
meta start_time_unix 1700000000.5
meta dropped_events 0
meta last_ticks 3000
thread 1 4242 main
thread 2 4243 worker-1
thread 3 4244 worker-2
code 1 /src/app.py main main 10 e900ea04d80408f10a000103f8
code 2 /src/lib/util.py helper Util.helper 100 ef00
code 3 /src/real.py f f 1 8000d8090a8803886189078041dd08119021890c8c0c8041d80b0c88618834804b
node 1 0 ip:1000
node 2 1 py:1:3
node 3 2 ip:2000
node 4 2 py:2:0
node 5 1 py:1:5
node 6 1 py:1:7
node 7 4 ip:3000
node 8 1 py:1:8
node 9 0 ip:4000
node 10 1 py:3:16
chunk 2
# heap after each event on the right
alloc 1 1100 1000 100 2 0
alloc 2 1200 2000 1000 4 11
alloc 1 1300 1000 50 3 1
free 3 1300 1000
alloc 2 1400 4000 5000 5 10
free 3 1500 2000
alloc 1 1600 5000 2000 6 0
free 2 1700 4000
alloc 1 1800 6000 300 7 2
free 2 1800 9999
alloc 3 1900 7000 10 8 0
alloc 1 2000 8000 40 9 4
alloc 2 2050 8100 64 10 0
end 1 2100
free 2 2200 5000
alloc 3 2300 6000 500 2 0
free 1 2400 3000
free 1 2500 1000
sample 1000 10000000
sample 1300 12000000
sample 1650 20000000
sample 2100 15000000
sample 3000 14000000
"""
# 100 (A) | 1100 (B) | free A: 1000, C@0x1000: 1050 (FREE first on equal ts) | D: 6050 |
# free B: 5050 | E: 7050 = peak at 1600 (C 50 s3, D 5000 s5, E 2000 s6) | free D: 2050 |
# F: 2350 | unmatched free | G: 2360 | H: 2400 | I: 2464 | END: live C,E,F,G,H,I = 2464 |
# free E: 464 | J@0x6000 replaces F: 664 | unmatched free | free C: 614 = leaked G,H,I,J.

BASIC_ROWS = [  # file, line, function, peak, allocated, allocations, end, leaked
    ("/src/app.py", 13, "main", 5000, 5000, 1, 0, 0),
    ("/src/app.py", 18, "main", 2000, 2000, 1, 2000, 0),
    ("/src/app.py", 12, "main", 50, 650, 3, 50, 500),
    ("/src/lib/util.py", 100, "Util.helper", 0, 1300, 2, 300, 0),
    ("/src/real.py", 3, "f", 0, 64, 1, 64, 64),
    ("??", 0, "0x4000", 0, 40, 1, 40, 40),
    ("/src/app.py", 0, "main", 0, 10, 1, 10, 10),
]
CSV_HEADER = ["file", "line", "function", "peak_bytes", "allocated_bytes", "allocations", "end_bytes"]


def as_csv(rows):
    return [CSV_HEADER] + [[f, str(l), fn, str(p), str(a), str(c), str(e)] for f, l, fn, p, a, c, e, *_ in rows]


# ---------------------------------------------------------------------------------------
# Two processes' files read together (memprof report A B; analyzer/merge.h). Both clocks
# tick 1000/s; the worker starts at tick 1500, 0.5 s after the parent (its wall-clock
# start agrees), and ends at tick 1800 without freeing anything. The same address in
# both is two blocks. Heaps together (ticks): 1100 100, 1200 400, 1600 600, 1650 650 (the
# peak, 0.65 s), 1700 350, 1800 the worker ends: 100, 1900 600. Were the worker's 250
# bytes still counted after its end, the peak would be 850 at 1900, with line 13 in it.
def merge_spec(pid, start_ticks, start_unix, last_ticks, body):
    return """
meta command python3 app.py
meta pid %d
meta status complete
meta clock tsc
meta clock_start_ticks %d
meta clock_ticks_per_sec 1000
meta start_time_unix %s
meta dropped_events 0
meta last_ticks %d
thread 1 %d main
code 1 /src/app.py main main 10 e900ea04d80408f10a000103f8
""" % (pid, start_ticks, start_unix, last_ticks, pid) + body


# lines 10, 12, 13 (py:1:0, py:1:2, py:1:5: BASIC_SPEC's code 1); the worker's line 18 (py:1:7)
MERGE_PARENT = merge_spec(100, 1000, "1700000000.0", 2000, """
node 1 0 py:1:0
node 2 0 py:1:2
node 3 0 py:1:5
alloc 1 1100 1000 100 1 0
alloc 1 1200 2000 300 2 0
free 1 1700 2000
alloc 1 1900 4000 500 3 0
sample 1000 1000
sample 1650 3000
sample 1950 2500
""")
MERGE_WORKER = merge_spec(101, 1500, "1700000000.5", 1800, """
node 1 0 py:1:0
node 2 0 py:1:7
alloc 1 1600 1000 200 1 0
alloc 1 1650 3000 50 2 0
sample 1550 500
sample 1700 800
""")


def test_merge():
    parent, worker = mk("merge-parent.db", MERGE_PARENT), mk("merge-worker.db", MERGE_WORKER)
    # line: peak, allocated, allocations, at the ends
    want = [["/src/app.py", "10", "main", "300", "300", "2", "300"],
            ["/src/app.py", "12", "main", "300", "300", "1", "0"],
            ["/src/app.py", "18", "main", "50", "50", "1", "50"],
            ["/src/app.py", "13", "main", "0", "500", "1", "500"]]
    for files in ((parent, worker), (worker, parent)):
        eq(csv_rows(ok("report", "--format=csv", *files))[1:], want, "merged rows %s" % (files,))
    j = json.loads(ok("report", "--format=json", parent, worker))
    eq((j["peak_heap_bytes"], j["peak_time_s"], j["duration_s"], j["allocations"], j["clocks_agree"], j["rows_total"]),
       (650, 0.65, 1.0, 5, True, 4), "merged json header")
    eq([(p["pid"], p["start_s"], p["end_s"], p["peak_heap_bytes"]) for p in j["processes"]],
       [(100, 0.0, 1.0, 600), (101, 0.5, 0.8, 250)], "merged json processes")
    text = ok("report", parent, worker)
    check(text.startswith("memprof report: 2 processes, duration 1.000 s, peak heap 650 B at 0.650 s (all processes "
                          "together), 5 allocations\n"), "merged text header:\n" + text)
    check("  pid 101: 0.500-0.800 s, peak heap 250 B at 0.650 s, 2 allocations: python3 app.py\n" in text,
          "merged text lists the worker:\n" + text)
    eq(csv_rows(ok("report", "--format=csv", "--by=function", parent, worker))[1:],
       [["/src/app.py", "0", "main", "650", "1150", "5", "850"]], "merged --by=function")
    # over time, at every sample of either: the RSS of the processes alive then (each
    # one's latest sample) and their heaps, added up; the worker's RSS leaves at its end
    # (0.8 s). mprof: the parent's samples as MEM lines, the worker's as CHLD lines
    ts = [["0.000000", "1000", "0"], ["0.550000", "1500", "400"], ["0.650000", "3500", "650"],
          ["0.700000", "3800", "350"], ["0.950000", "2500", "600"]]
    for files in ((parent, worker), (worker, parent)):
        eq(csv_rows(ok("timeseries", *files)), [["time_s", "rss_bytes", "heap_bytes"]] + ts,
           "merged timeseries %s" % (files,))
    j = json.loads(ok("timeseries", "--format=json", worker, parent))
    eq((j["start_time_unix"], len(j["processes"]), [(x["time_s"], x["rss_bytes"], x["heap_bytes"]) for x in j["samples"]]),
       (1700000000.0, 2, [(float(a), int(b), int(c)) for a, b, c in ts]), "merged timeseries json")
    eq(ok("timeseries", "--format=mprof", worker, parent).splitlines(),
       ["CMDLINE python3 app.py", "CHLD 101 0.000477 1700000000.5500", "CHLD 101 0.000763 1700000000.7000",
        "MEM 0.000954 1700000000.0000", "MEM 0.002861 1700000000.6500", "MEM 0.002384 1700000000.9500"],
       "merged timeseries mprof")
    svg = ok("plot", parent, worker)
    check("2 processes, duration 1.000 s, peak RSS 3.71 KiB at 0.700 s, peak heap 650 B" in svg
          and "peak heap 650 B at 0.650 s" in svg, "merged plot:\n" + svg[:1500])
    # stats: the processes' figures added up, the peak of both together, RSS summed
    st = json.loads(ok("stats", "--format=json", worker, parent))
    eq({k: st[k] for k in ("allocations", "frees", "allocated_bytes", "peak_heap_bytes", "peak_time_s", "peak_rss_bytes",
                           "peak_rss_time_s", "end_bytes", "leaked_bytes", "leaked_blocks", "threads", "samples",
                           "end_marker")},
       {"allocations": 5, "frees": 1, "allocated_bytes": 1150, "peak_heap_bytes": 650, "peak_time_s": 0.65,
        "peak_rss_bytes": 3800, "peak_rss_time_s": 0.7, "end_bytes": 850, "leaked_bytes": 850, "leaked_blocks": 4,
        "threads": 2, "samples": 5, "end_marker": False}, "merged stats")
    eq([(r["line"], r["peak_bytes"]) for r in st["top_lines"]], [(10, 300), (12, 300), (18, 50), (13, 0)],
       "merged stats top lines")
    text = ok("stats", parent, worker)
    check("peak heap:             650 B at 0.650 s (all processes together)" in text and
          "status:                2 of 2 processes complete" in text, "merged stats text:\n" + text)
    # peak and leaks: stacks that read the same in both processes are one entry
    j = json.loads(ok("peak", "--format=json", worker, parent))
    eq((j["total_bytes"], [(s["frames"][0]["line"], s["bytes"], s["blocks"]) for s in j["stacks"]]),
       (650, [(10, 300, 2), (12, 300, 1), (18, 50, 1)]), "merged peak")
    j = json.loads(ok("leaks", "--format=json", parent, worker))
    eq((j["total_bytes"], [(s["frames"][0]["line"], s["bytes"], s["blocks"], s["pid"]) for s in j["stacks"]]),
       (850, [(13, 500, 1, 100), (10, 300, 2, 100), (18, 50, 1, 101)]), "merged leaks")
    text = ok("peak", parent, worker)
    check("650 B live at the peak (0.650 s, all processes together) in 3 stacks" in text and
          "(pid 100 and others)" in text, "merged peak text:\n" + text)
    # temporary: the parent's block at line 12 freed before its thread's next allocation
    eq(csv_rows(ok("temporary", "--format=csv", worker, parent))[1:], [["/src/app.py", "12", "main", "1", "300", "1"]],
       "merged temporary")
    j = json.loads(ok("temporary", "--format=json", worker, parent))
    eq((j["allocations"], j["temporary_allocations"], j["temporary_bytes"], len(j["processes"])), (5, 1, 300, 2),
       "merged temporary json")
    # the flame graph of both: equal frames are one, whichever process they come from
    eq(sorted(ok("flamegraph", "--format=folded", worker, parent).splitlines()),
       ["/src/app.py:10 main 300", "/src/app.py:12 main 300", "/src/app.py:18 main 50"], "merged flame graph, peak")
    eq(sorted(ok("flamegraph", "--format=folded", "--metric=allocated", parent, worker).splitlines()),
       ["/src/app.py:10 main 300", "/src/app.py:12 main 300", "/src/app.py:13 main 500", "/src/app.py:18 main 50"],
       "merged flame graph, allocated")
    check("2 processes, peak heap 650 B at 0.650 s (all together)" in ok("flamegraph", parent, worker),
          "merged flame graph's subtitle")
    # a worker whose wall-clock start disagrees with its ticks (another boot): placed by
    # it, 5 s after the parent started, when the parent has ended: the peak is the
    # parent's own, 600 at 0.9 s
    far = mk("merge-far.db", MERGE_WORKER.replace("1700000000.5", "1700000005.0"))
    j = json.loads(ok("report", "--format=json", parent, far))
    eq((j["peak_heap_bytes"], j["peak_time_s"], j["clocks_agree"]), (600, 0.9, False), "placed by wall clock")
    eq([(r["line"], r["peak_bytes"]) for r in j["rows"]], [(13, 500), (10, 100), (12, 0), (18, 0)],
       "placed by wall clock: rows")
    check("processes are placed by their wall-clock starts" in ok("report", parent, far), "the text says so")
    # bad input: one line naming the file, exit 1; other commands take one file (exit 2)
    bad = os.path.join(TMP, "merge-bad.db")
    with open(bad, "wb") as f:
        f.write(b"SQLite format 3\0" + b"x" * 5000)
    rc, out, err = run("report", parent, bad)
    eq((rc, out, len(err.strip().splitlines()), bad in err), (1, "", 1, True), "a damaged file among them")
    # lines: the file's lines in both processes added up; a file or function in none:
    # one line, exit 1
    eq(csv_rows(ok("lines", "--format=csv", "app.py", worker, parent))[1:],
       [["/src/app.py", "10", "300", "300", "2", "300", ""], ["/src/app.py", "12", "300", "300", "1", "0", ""],
        ["/src/app.py", "13", "0", "500", "1", "500", ""], ["/src/app.py", "18", "50", "50", "1", "50", ""]],
       "merged lines")
    for target, said in (("nothere.py", "no Python code from 'nothere.py' in these profiles"),
                         ("app.py:nofunc", "no function 'nofunc' in 'app.py' in these profiles")):
        rc, out, err = run("lines", target, parent, worker)
        eq((rc, out, err), (1, "", "memprof: lines: %s\n" % said), "merged lines of %s" % target)


def test_basic():
    db = mk("basic.db", BASIC_SPEC)
    digest = hashlib.sha256(open(db, "rb").read()).hexdigest()

    s = json.loads(ok("stats", "--format=json", db))
    want = {
        "command": "python3 app.py --x", "pid": 4242, "duration_s": 2.0, "status": "complete",
        "allocations": 10, "frees": 5, "allocated_bytes": 9064, "peak_heap_bytes": 7050,
        "peak_time_s": 0.6, "peak_rss_bytes": 20000000, "peak_rss_time_s": 0.65,
        "end_bytes": 2464, "leaked_bytes": 614, "leaked_blocks": 4, "dropped_events": 0,
        "unmatched_frees": 2, "replaced_allocations": 1, "threads": 3, "end_marker": True,
        "samples": 5,
        "allocators": {"malloc": 5, "calloc": 1, "realloc": 1, "posix_memalign": 1,
                       "PyMem_Malloc": 1, "PyObject_Malloc": 1},
        "histogram": [
            {"min": 8, "max": 15, "count": 1, "bytes": 10},
            {"min": 32, "max": 63, "count": 2, "bytes": 90},
            {"min": 64, "max": 127, "count": 2, "bytes": 164},
            {"min": 256, "max": 511, "count": 2, "bytes": 800},
            {"min": 512, "max": 1023, "count": 1, "bytes": 1000},
            {"min": 1024, "max": 2047, "count": 1, "bytes": 2000},
            {"min": 4096, "max": 8191, "count": 1, "bytes": 5000},
        ],
    }
    for k, v in want.items():
        eq(s.get(k), v, "basic stats %s" % k)
    eq([(r["file"], r["line"], r["function"], r["peak_bytes"], r["allocated_bytes"], r["allocations"],
         r["end_bytes"], r["leaked_bytes"]) for r in s["top_lines"]], BASIC_ROWS, "basic stats top_lines")

    eq(csv_rows(ok("report", "--format=csv", db)), as_csv(BASIC_ROWS), "basic report csv")
    rep = json.loads(ok("report", "--format=json", db))
    eq((rep["command"], rep["pid"], rep["duration_s"], rep["peak_heap_bytes"], rep["peak_time_s"],
        rep["dropped_events"]), ("python3 app.py --x", 4242, 2.0, 7050, 0.6, 0), "basic report json header")
    eq([(r["file"], r["line"], r["function"], r["peak_bytes"], r["allocated_bytes"], r["allocations"],
         r["end_bytes"], r["leaked_bytes"]) for r in rep["rows"]], BASIC_ROWS, "basic report json rows")

    by_alloc = sorted(BASIC_ROWS, key=lambda r: (-r[4], -r[3], r[0], r[1]))
    eq(csv_rows(ok("report", "--format=csv", "--sort=allocated", db)), as_csv(by_alloc), "--sort=allocated")
    by_count = [BASIC_ROWS[i] for i in (2, 3, 0, 1, 4, 5, 6)]
    eq(csv_rows(ok("report", "--format=csv", "--sort=count", db)), as_csv(by_count), "--sort=count")
    by_end = [BASIC_ROWS[i] for i in (1, 3, 4, 2, 5, 6, 0)]
    eq(csv_rows(ok("report", "--format=csv", "--sort=end", db)), as_csv(by_end), "--sort=end")
    eq(csv_rows(ok("report", "--format=csv", "--limit=2", db)), as_csv(BASIC_ROWS[:2]), "--limit=2")
    eq(csv_rows(ok("report", "--format=csv", "--limit=0", db)), as_csv(BASIC_ROWS), "--limit=0")

    # --focus: the innermost Python frame under the path wins over util.py's frames
    focus_rows = [
        ("/src/app.py", 13, "main", 5000, 5000, 1, 0),
        ("/src/app.py", 18, "main", 2000, 2000, 1, 2000),
        ("/src/app.py", 12, "main", 50, 1950, 5, 350),
        ("/src/real.py", 3, "f", 0, 64, 1, 64),  # nothing under the focus: innermost
        ("??", 0, "0x4000", 0, 40, 1, 40),
        ("/src/app.py", 0, "main", 0, 10, 1, 10),
    ]
    eq(csv_rows(ok("report", "--format=csv", "--focus=/src/app.py", db)), as_csv(focus_rows), "--focus=file")
    # a focus path no Python frame is in (a typo) is said, and changes nothing
    rc, out, err = run("report", "--format=csv", "--focus=/src/nothere", db)
    eq((rc, out, err), (0, ok("report", "--format=csv", db),
                        "memprof: note: no Python frame of the profile is in /src/nothere (--focus): the figures are as "
                        "without it\n"), "--focus matching nothing")
    eq(csv_rows(ok("report", "--format=csv", "--focus=/src", db)), as_csv(BASIC_ROWS), "--focus=dir")
    eq(csv_rows(ok("report", "--format=csv", "--focus=/src/lib/", db)), as_csv(BASIC_ROWS), "--focus=/src/lib/")
    eq(csv_rows(ok("report", "--format=csv", "--focus=/src/ap", db)), as_csv(BASIC_ROWS), "--focus is a path prefix, not a string prefix")

    by_fn = [
        ("/src/app.py", 0, "main", 7050, 7660, 6, 2060),
        ("/src/lib/util.py", 0, "Util.helper", 0, 1300, 2, 300),
        ("/src/real.py", 0, "f", 0, 64, 1, 64),
        ("??", 0, "0x4000", 0, 40, 1, 40),
    ]
    eq(csv_rows(ok("report", "--format=csv", "--by=function", db)), as_csv(by_fn), "--by=function")
    by_file = [(f, 0, "", p, a, c, e) for f, _, _, p, a, c, e in by_fn]
    eq(csv_rows(ok("report", "--format=csv", "--by=file", db)), as_csv(by_file), "--by=file")

    ts = ok("timeseries", "--format=csv", db)
    eq(csv_rows(ts), [["time_s", "rss_bytes", "heap_bytes"],
                      ["0.000000", "10000000", "0"], ["0.300000", "12000000", "1050"],
                      ["0.650000", "20000000", "7050"], ["1.100000", "15000000", "2464"],
                      ["2.000000", "14000000", "614"]], "timeseries csv")
    eq(ok("timeseries", db), ts, "timeseries defaults to csv")
    eq(ok("timeseries", "--format=mprof", db),
       "CMDLINE python3 app.py --x\n"
       "MEM 9.536743 1700000000.5000\nMEM 11.444092 1700000000.8000\nMEM 19.073486 1700000001.1500\n"
       "MEM 14.305115 1700000001.6000\nMEM 13.351440 1700000002.5000\n", "timeseries mprof")
    # a command with a newline (python3 -c 'a\nb') stays on the CMDLINE line, which
    # memory_profiler's reader splits into field and value
    nl = os.path.join(TMP, "newline.db")
    shutil.copyfile(db, nl)
    c = sqlite3.connect(nl)
    c.execute("UPDATE meta SET value = ? WHERE key = 'command'", ("python3 -c 'x = 1\nprint(x)'",))
    c.commit()
    c.close()
    eq(ok("timeseries", "--format=mprof", nl).splitlines()[0], "CMDLINE python3 -c 'x = 1 print(x)'",
       "mprof CMDLINE of a command with a newline")
    tj = json.loads(ok("timeseries", "--format=json", db))
    eq([(x["time_s"], x["rss_bytes"], x["heap_bytes"]) for x in tj["samples"]],
       [(0.0, 10000000, 0), (0.3, 12000000, 1050), (0.65, 20000000, 7050), (1.1, 15000000, 2464),
        (2.0, 14000000, 614)], "timeseries json")

    # -o on every command, nothing on stdout
    for cmd, fmt in (("report", "csv"), ("stats", "json"), ("timeseries", "csv"), ("peak", "json"),
                     ("leaks", "json")):
        out = os.path.join(TMP, "out." + cmd)
        rc, so, se = run(cmd, "--format=" + fmt, "-o", out, db)
        eq((rc, so, se), (0, "", ""), "-o for %s" % cmd)
        eq(open(out).read(), ok(cmd, "--format=" + fmt, db), "-o content for %s" % cmd)
    rc, so, se = run("report", "--output=" + os.path.join(TMP, "o2.csv"), "--format=csv", db)
    eq(rc, 0, "--output=FILE")

    text = ok("report", db)
    for needle in ("python3 app.py --x", "pid 4242", "duration 2.000 s", "peak heap 6.88 KiB at 0.600 s",
                   "/src/app.py:13 main", "4.88 KiB", "1.95 KiB", "PEAK", "ALLOCATED"):
        check(needle in text, "text report mentions %r:\n%s" % (needle, text))
    check("dropped" not in text, "no dropped-events warning when none were dropped")
    check(text.index("/src/app.py:13") < text.index("/src/app.py:18") < text.index("/src/app.py:12"),
          "text report biggest first")
    st = ok("stats", db)
    for needle in ("pid 4242", "6.88 KiB", "19.1 MiB", "allocations:", "PyObject_Malloc", "top lines"):
        check(needle in st, "text stats mentions %r:\n%s" % (needle, st))

    # peak: stacks live at 1600 are s3 (50), s5 (5000), s6 (2000)
    pk = json.loads(ok("peak", "--format=json", db))
    eq([(x["stack"], x["bytes"], x["blocks"]) for x in pk["stacks"]], [(5, 5000, 1), (6, 2000, 1), (3, 50, 1)],
       "peak stacks")
    eq([f["file"] + ":" + str(f["line"]) for f in pk["stacks"][0]["frames"] if f["python"]], ["/src/app.py:13"],
       "peak stack frames (innermost first)")
    lk = json.loads(ok("leaks", "--format=json", db))
    eq([(x["stack"], x["bytes"]) for x in lk["stacks"]], [(6, 2000), (7, 300), (10, 64), (3, 50), (9, 40), (8, 10)],
       "leaks stacks (live at END)")
    check("7050" not in ok("peak", db) and "#1" in ok("peak", db), "peak text")
    # leaks --never-freed: what no free released (after the END marker too), as stats'
    # leaked_bytes counts it, instead of what was live at END
    nf = json.loads(ok("leaks", "--never-freed", "--format=json", db))
    st = json.loads(ok("stats", "--format=json", db))
    eq((lk["never_freed"], nf["never_freed"], lk["total_bytes"], nf["total_bytes"]),
       (False, True, st["end_bytes"], st["leaked_bytes"]), "leaks and leaks --never-freed totals")
    check(" never freed in " in ok("leaks", "--never-freed", db), "leaks --never-freed text")
    # JSON with --limit says how many there were in all
    for cmd, key in (("report", "rows"), ("temporary", "rows"), ("peak", "stacks"), ("leaks", "stacks")):
        whole = json.loads(ok(cmd, "--format=json", db))
        cut = json.loads(ok(cmd, "--format=json", "--limit=1", db))
        eq((cut[key + "_total"], len(cut[key]), whole[key + "_total"]), (len(whole[key]), min(1, len(whole[key])),
                                                                        len(whole[key])), cmd + " JSON totals")

    eq(hashlib.sha256(open(db, "rb").read()).hexdigest(), digest, "the profile is never modified")
    return db


def test_dropped_and_running():
    spec = BASIC_SPEC.replace("meta dropped_events 0", "meta dropped_events 17").replace(
        "meta status complete", "meta status running").replace("end 1 2100\n", "")
    db = mk("dropped.db", spec)
    s = json.loads(ok("stats", "--format=json", db))
    eq(s["dropped_events"], 17, "dropped_events")
    eq(s["status"], "running", "status running")
    eq(s["end_marker"], False, "no END marker")
    eq(s["end_bytes"], 614, "without END, end = never freed")
    for cmd in ("report", "stats", "peak", "leaks"):
        out = ok(cmd, db)
        check("17 events were dropped" in out, "%s text mentions dropped events:\n%s" % (cmd, out))
    rows = csv_rows(ok("report", "--format=csv", db))
    eq([r[6] for r in rows[1:]], ["0", "0", "500", "0", "64", "40", "10"], "end_bytes = leaked without END")


def test_stopped_early():
    """Recording stopped at tick 1500 (samples at 1000, 1300, 1650, 2100, 3000): the heap after
    it is not known, so the time series leaves it out (CSV empty, JSON null) rather than
    showing it frozen, and the charts say the stop (text and JSON say it already)."""
    db = mk("stopped.db", BASIC_SPEC + "meta stopped_ticks 1500\nmeta stopped_reason out of memory for tests\n")
    rows = csv_rows(ok("timeseries", db))
    eq([r[2] != "" for r in rows[1:]], [True, True, False, False, False], "CSV heap known before the stop only")
    j = json.loads(ok("timeseries", "--format=json", db))
    eq([x["heap_bytes"] is not None for x in j["samples"]], [True, True, False, False, False], "JSON heap null after it")
    for cmd, said in (("plot", "the heap after it is not known"), ("flamegraph", "nothing after it is counted")):
        out = ok(cmd, db)
        check("recording stopped at 0.500 s (out of memory for tests): " + said in out,
              "%s says the stop:\n%s" % (cmd, out[:1500]))


def test_wal_recovery():
    """A killed process leaves committed data in the WAL: it must be read, the main file
    left untouched."""
    db = os.path.join(TMP, "wal.db")
    shutil.copy(os.path.join(TMP, "basic.db"), db)
    code = ("import sqlite3, os, sys\n"
            "c = sqlite3.connect(sys.argv[1])\n"
            "c.execute('PRAGMA journal_mode=WAL')\n"
            "c.execute('PRAGMA wal_autocheckpoint=0')\n"
            "c.execute(\"UPDATE meta SET value='running' WHERE key='status'\")\n"
            "c.execute('INSERT INTO samples VALUES (4000, 30000000)')\n"
            "c.commit()\n"
            "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, db], check=True)
    check(os.path.exists(db + "-wal") and os.path.getsize(db + "-wal") > 0, "WAL left behind")
    digest = hashlib.sha256(open(db, "rb").read()).hexdigest()
    s = json.loads(ok("stats", "--format=json", db))
    eq((s["status"], s["samples"], s["peak_rss_bytes"], s["duration_s"], s["allocations"]),
       ("running", 6, 30000000, 3.0, 10), "WAL content read")
    eq(hashlib.sha256(open(db, "rb").read()).hexdigest(), digest, "main file not modified with WAL")
    # a copy of the file with its -wal and no -shm: read alike, and left as it was (the -shm
    # that SQLite makes to read it is removed)
    copy = os.path.join(TMP, "wal-copy.db")
    shutil.copyfile(db, copy)
    shutil.copyfile(db + "-wal", copy + "-wal")
    wal_digest = hashlib.sha256(open(copy + "-wal", "rb").read()).hexdigest()
    eq(json.loads(ok("stats", "--format=json", copy))["samples"], 6, "WAL copy read")
    eq(sorted(f for f in os.listdir(TMP) if f.startswith("wal-copy.db")), ["wal-copy.db", "wal-copy.db-wal"],
       "no -shm left beside a copy")
    eq(hashlib.sha256(open(copy + "-wal", "rb").read()).hexdigest(), wal_digest, "-wal of a copy not modified")


def test_source_lines():
    src = os.path.join(TMP, "prog.py")
    with open(src, "w") as f:
        f.write("import sys\n\n    data = [bytearray(1000) for _ in range(10)]   \nprint(len(data))\n")
    spec = ("meta command python3 prog.py\nmeta pid 7\nmeta clock_ticks_per_sec 1000000000\n"
            "code 1 %s <module> <module> 1 ee00\n"  # code 13, 7 units, +0 -> line 1 ...
            "code 2 %s <listcomp> <listcomp> 3 ee00\n"
            "node 1 0 py:1:0\nnode 2 1 py:2:0\n"
            "alloc 1 10 1000 1000 2\nalloc 1 20 2000 1000 2\n" % (src, src))
    db = mk("source.db", spec)
    text = ok("report", db)
    check("\n" + " " * 45 + "data = [bytearray(1000) for _ in range(10)]\n" in text,
          "text report shows the trimmed source line:\n" + text)
    check("%s:3 <listcomp>" % src in text, "location in text report")
    # relative co_filename: relative to the program's working directory (meta cwd)
    spec = spec.replace(src, "prog.py") + "meta cwd %s\n" % TMP
    spec += "code 3 /lib/other.py inner inner 1 ee00\nnode 3 2 py:3:0\nalloc 1 30 3000 500 3\n"
    db = mk("source-rel.db", spec)
    text = subprocess.run([MEMPROF, "report", db], capture_output=True, cwd="/").stdout.decode()
    check("\n" + " " * 45 + "data = [bytearray(1000) for _ in range(10)]\n" in text,
          "relative file name read from meta cwd:\n" + text)
    rows = csv_rows(subprocess.run([MEMPROF, "report", "--format=csv", "--focus=" + TMP, db],
                                   capture_output=True, cwd="/").stdout.decode())
    eq([r[:4] for r in rows[1:]], [["prog.py", "3", "<listcomp>", "2500"]],
       "--focus resolves relative names against meta cwd")
    # a project moved along with its profile: files under the program's working directory
    # are looked up under ours
    moved = os.path.join(TMP, "moved")
    os.makedirs(os.path.join(moved, "sub"), exist_ok=True)
    shutil.copy(src, os.path.join(moved, "sub", "prog.py"))
    db2 = mk("source-moved.db", spec.replace("meta cwd %s" % TMP, "meta cwd /nonexistent/proj").replace(
        "code 1 prog.py", "code 1 /nonexistent/proj/sub/prog.py").replace(
        "code 2 prog.py", "code 2 /nonexistent/proj/sub/prog.py"))
    text = subprocess.run([MEMPROF, "report", db2], capture_output=True, cwd=moved).stdout.decode()
    check("\n" + " " * 45 + "data = [bytearray(1000) for _ in range(10)]\n" in text,
          "source of a moved project found under our directory:\n" + text)
    rows = csv_rows(subprocess.run([MEMPROF, "report", "--format=csv", "--focus=/elsewhere", db],
                                   capture_output=True, cwd="/").stdout.decode())
    eq([r[:4] for r in rows[1:]], [["prog.py", "3", "<listcomp>", "2000"], ["/lib/other.py", "1", "inner", "500"]],
       "--focus fallback: innermost Python frame")


def test_fifo_source():
    """A program read from a named pipe (python3 prog.fifo): its file name is a FIFO, and
    reading its source text waited for a writer forever. It is not a regular file: no
    source text, the rows as usual."""
    fifo = os.path.join(TMP, "prog.fifo")
    os.mkfifo(fifo)
    db = mk("fifo.db", "meta command python3 prog.fifo\nmeta pid 5\nmeta clock_ticks_per_sec 1000\n"
                       "code 1 %s <module> <module> 1 e800\nnode 1 0 py:1:0\nalloc 1 1 a 100 1\n" % fifo)
    for args in (("report",), ("lines", fifo), ("temporary",)):
        rc, so, se = run(*args, db, timeout=20)
        eq((rc, se), (0, ""), "%s with a FIFO as source file" % args[0])
    eq(csv_rows(ok("report", "--format=csv", db))[1][:5], [fifo, "1", "<module>", "100", "100"], "FIFO row")


def test_source_encodings():
    """Source text as Python reads it, and always UTF-8 in the outputs: a coding
    declaration on line 1 or 2 (latin-1, cp1252), a UTF-8 byte order mark, lines ended by
    CR alone (as old Mac files are, which Python accepts), bytes that are not UTF-8 in a
    file without a declaration (U+FFFD), and a declaration after a line of code (ignored,
    as Python ignores it)."""
    cases = {
        "lat1.py": (b"# -*- coding: latin-1 -*-\nx = 1\ns = 'caf\xe9'\n", "s = 'caf\u00e9'"),
        "cp.py": (b"#!/usr/bin/python3\n# vim: set fileencoding=cp1252 :\ns = '\x80 5'\n", "s = '\u20ac 5'"),
        "bom.py": (b"\xef\xbb\xbfx = 1\ny = 2\ns = 'bom'\n", "s = 'bom'"),
        "cr.py": (b"x = 1\ry = 2\rs = 'cr'\r", "s = 'cr'"),
        "bad.py": (b"x = 1\ny = 2\ns = '\xff\xfe'\n", "s = '\ufffd\ufffd'"),
        "late.py": (b"x = 1\n# coding: latin-1\ns = '\xc3\xa9'\n", "s = '\u00e9'"),
    }
    spec = "meta command python3 x.py\nmeta pid 7\nmeta clock_ticks_per_sec 1000000000\n"
    for i, (name, (data, _)) in enumerate(sorted(cases.items())):
        path = os.path.join(TMP, "enc", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        spec += "code %d %s f f 3 e800\nnode %d 0 py:%d:0\nalloc 1 %d %x 100 %d\n" % (
            i + 1, path, i + 1, i + 1, 10 * (i + 1), 4096 * (i + 1), i + 1)
    db = mk("encodings.db", spec)
    for i, (name, (_, want)) in enumerate(sorted(cases.items())):
        p = subprocess.run([MEMPROF, "lines", os.path.join(TMP, "enc", name), "--format=json", db],
                           capture_output=True, timeout=60)
        eq((p.returncode, p.stderr), (0, b""), "lines " + name)
        try:
            j = json.loads(p.stdout.decode("utf-8"))  # strictly UTF-8
        except ValueError as e:
            check(False, "lines %s: JSON not UTF-8 (%s)" % (name, e))
            continue
        eq([(r["line"], r["text"]) for r in j["rows"]], [(3, want)], "line 3's text of " + name)


def test_control_characters():
    """Names from the profile are the program's: a file name or command line holding ESC
    sequences, CR or other control characters would act on the terminal the text outputs
    go to. Text shows them as '?'; JSON escapes them; the rest of the output is as ever."""
    evil = "/t/x\x1b[2J\x1b]0;pwned\x07\ry\x08.py"
    spec = ("meta command python3 x.py\nmeta pid 7\nmeta clock_ticks_per_sec 1000\n"
            "code 1 EVIL f f 1 e800\nnode 1 0 py:1:0\nalloc 1 1 a 100 1\n")
    db = mk("ctl.db", spec)
    con = sqlite3.connect(db)  # (mkprofile's specs are lines of words)
    con.execute("UPDATE pycode SET filename = ?", (evil,))
    con.execute("UPDATE meta SET value = ? WHERE key = 'command'", ("python3 \x1b[31mred\x01.py",))
    con.commit()
    con.close()
    for args in (("report",), ("stats",), ("peak",), ("leaks",), ("temporary",), ("lines", evil)):
        p = subprocess.run([MEMPROF, *args, db], capture_output=True, timeout=60)
        eq((p.returncode, p.stderr), (0, b""), "%s with control characters in names" % args[0])
        bad = sorted(set(c for c in p.stdout if (c < 0x20 and c not in (9, 10)) or c == 0x7f))
        eq(bad, [], "%s: control characters in its text" % args[0])
        if args[0] in ("report", "stats"):
            check(b"/t/x?[2J?]0;pwned??y?.py" in p.stdout, "%s shows the name with '?':\n%s" % (args[0], p.stdout))
    rows = json.loads(ok("report", "--format=json", db))["rows"]
    eq([r["file"] for r in rows], [evil], "JSON keeps the name, escaped")


def test_zip_source():
    """A module imported from a zip archive: its file name is the archive's path and the
    member's. The text comes from the member, stored or deflated, with bytes before the
    archive (a zipapp's #! line); a member that is not there, an archive damaged in 400
    ways (headers' bytes set at random, the file cut short) or a file that is not an
    archive give no text and no error (this runs under ASan too)."""
    import random
    import zipfile
    text = "import sys\n\n    data = [bytearray(1000) for _ in range(10)]   \nprint(len(data))\n"
    arc = os.path.join(TMP, "zipsrc", "lib.zip")
    os.makedirs(os.path.dirname(arc), exist_ok=True)
    src = arc + "/pkg/prog.py"
    db = mk("zip.db", "meta command python3 prog.py\nmeta pid 7\nmeta clock_ticks_per_sec 1000000000\n"
                      "code 1 %s <listcomp> <listcomp> 3 ee00\nnode 1 0 py:1:0\nalloc 1 10 1000 1000 1\n" % src)
    shown = "\n" + " " * 45 + "data = [bytearray(1000) for _ in range(10)]\n"

    def write(method, prefix=b"", name="pkg/prog.py"):
        with open(arc, "wb") as f:
            f.write(prefix)
            with zipfile.ZipFile(f, "w", method) as z:
                z.writestr("pkg/__init__.py", "")
                z.writestr(name, text)

    def report(what):
        rc, so, se = run("report", db)
        eq((rc, se), (0, ""), "report, " + what)
        return shown in so

    write(zipfile.ZIP_STORED)
    check(report("stored"), "text of a stored member")
    write(zipfile.ZIP_DEFLATED, prefix=b"#!/usr/bin/python3\n")
    check(report("deflated"), "text of a deflated member after a #! line")
    good = open(arc, "rb").read()
    write(zipfile.ZIP_DEFLATED, name="pkg/other.py")
    check(not report("member missing"), "no text: member missing")
    rng = random.Random(7)
    for i in range(400):
        b = bytearray(good)
        if i % 8 == 7:
            b = b[:rng.randrange(len(b))]
        else:
            for _ in range(rng.randint(1, 4)):
                at = len(b) - 1 - rng.randrange(160) if rng.random() < 0.7 else rng.randrange(80)
                b[at] = rng.randrange(256)
        with open(arc, "wb") as f:
            f.write(b)
        report("damaged archive %d" % i)
    with open(arc, "wb") as f:
        f.write(os.urandom(3000))
    check(not report("not an archive"), "no text: not an archive")


def test_frozen_source():
    """`<frozen X>` file names (CPython 3.11's frozen start-up modules) show the text of
    X's source in the standard library: the first directory named python3.N among the
    sources table's files that holds os.py (a site-packages directory of a virtual
    environment, without os.py, is passed over). A package's is its __init__.py; a name
    not there, or not a module name, shows none."""
    import sqlite3
    lib = os.path.join(TMP, "fakepy", "lib", "python3.11")
    for rel, text in (("os.py", "# os\n"), ("importlib/_bootstrap.py", "a = 1\nb = 2\n    code = marshal.loads(data)\n"),
                      ("frozenpkg/__init__.py", "x = 1\n    y = [0] * 9\n")):
        os.makedirs(os.path.dirname(os.path.join(lib, rel)), exist_ok=True)
        with open(os.path.join(lib, rel), "w") as f:
            f.write(text)
    spec = "meta command python3 x.py\nmeta pid 7\nmeta clock_ticks_per_sec 1000000000\n"
    names = ["<frozen importlib._bootstrap>", "<frozen frozenpkg>", "<frozen nosuch>", "<frozen ../os>"]
    for i, name in enumerate(names):
        spec += "code %d %s f%d f%d %d ee00\nnode %d 0 py:%d:0\nalloc 1 %d %x 100 %d\n" % (
            i + 1, "FROZEN%d" % i, i, i, 3 if i == 0 else 2, i + 1, i + 1, 10 * (i + 1), 4096 * (i + 1), i + 1)
    db = mk("frozen.db", spec)
    con = sqlite3.connect(db)
    # (mkprofile's specs take no spaces in a name)
    con.executemany("UPDATE pycode SET filename = ? WHERE id = ?", [(n, i + 1) for i, n in enumerate(names)])
    con.executemany("INSERT INTO sources VALUES (?, 0, 0)",
                    [(os.path.join(TMP, "venv/lib/python3.11/site-packages/dep.py"),), (os.path.join(lib, "threading.py"),)])
    con.commit()
    con.close()
    rc, text, err = run("report", db)
    eq((rc, err), (0, ""), "report with frozen names")
    check("<frozen importlib._bootstrap>:3 f0\n" + " " * 45 + "code = marshal.loads(data)\n" in text,
          "frozen module's text:\n" + text)
    check("<frozen frozenpkg>:2 f1\n" + " " * 45 + "y = [0] * 9\n" in text, "frozen package's text:\n" + text)
    for row in ("<frozen nosuch>:2 f2\n", "<frozen ../os>:2 f3\n"):
        check(row in text and not text.split(row, 1)[1].startswith(" " * 45),
              "no text for %s:\n%s" % (row.strip(), text))


def test_paths():
    """Python file names are shown lexically normalized everywhere; <frozen ...> as is."""
    spec = ("meta command paths\nmeta pid 6\nmeta clock_ticks_per_sec 1000\nmeta clock_start_ticks 0\n"
            "code 1 /src/demo/../app.py main main 1 e800\n"
            "code 2 /src/./app.py main main 1 e800\n"
            "code 3 <frozen\\x20importlib._bootstrap> _load _load 1 e800\n"
            "code 4 ./lib//../rel.py f f 1 e800\n"
            "node 1 0 py:1:0\nnode 2 0 py:2:0\nnode 3 1 py:3:0\nnode 4 0 py:4:0\n"
            "alloc 1 1 1000 100 1\nalloc 1 2 2000 200 2\nalloc 1 3 3000 30 3\nalloc 1 4 4000 4 4\n")
    db = mk("paths.db", spec)
    rows = csv_rows(ok("report", "--format=csv", db))[1:]
    eq([r[:5] for r in rows], [["/src/app.py", "1", "main", "300", "300"],
                               ["<frozen\\x20importlib._bootstrap>", "1", "_load", "30", "30"],
                               ["rel.py", "1", "f", "4", "4"]], "normalized file names in report")
    pk = json.loads(ok("peak", "--format=json", db))
    eq([([f["file"] for f in x["frames"]], x["bytes"]) for x in pk["stacks"]],
       [(["/src/app.py"], 300), (["<frozen\\x20importlib._bootstrap>", "/src/app.py"], 30), (["rel.py"], 4)],
       "normalized file names in peak stacks (the two names of /src/app.py one stack)")
    return db


def line_code(spec, lines, file="/t/app.py"):
    """Code objects whose one instruction is on line L (table e800: 1 unit, +0 from
    firstlineno) and a one-frame stack node for each: node k is line lines[k-1]."""
    for k, line in enumerate(lines, 1):
        spec.append("code %d %s f%d f%d %d e800" % (k, file, line, line, line))
        spec.append("node %d 0 py:%d:0" % (k, k))


def test_temporary():
    """Temporary = freed by the allocating thread before that thread's next allocation."""
    spec = ["meta command temp", "meta pid 8", "meta clock_ticks_per_sec 1000", "meta clock_start_ticks 0"]
    line_code(spec, [10, 20, 30, 40])
    spec += """alloc 1 1 100 10 1
free 1 2 100
alloc 1 3 200 20 2
alloc 1 4 300 30 1
free 1 5 200
free 1 6 300
alloc 1 7 400 40 3
free 2 8 400
alloc 2 9 500 50 4
free 1 10 500
free 2 11 999
alloc 1 12 600 60 2
free 1 13 700
free 1 14 600
alloc 1 15 800 80 3
free 2 16 800
alloc 2 17 800 88 3
free 1 18 800
alloc 2 19 900 90 4
free 2 20 900
alloc 2 20 a00 100 4
alloc 1 21 b00 5 1
free 1 22 b00
alloc 1 23 b00 5 1
""".splitlines()
    # temporary: 0x100, 0x300 (0x200 was not the last), 0x600 (an unmatched free in
    # between does not matter), 0x900 (realloc pattern), the first 0xb00. Not: 0x400,
    # 0x500 (freed by the other thread), 0x800 (freed by t1 after t2 got it back).
    db = mk("temporary.db", "\n".join(spec) + "\n")
    want = [("/t/app.py", 10, "f10", 3, 45, 4), ("/t/app.py", 40, "f40", 1, 90, 3),
            ("/t/app.py", 20, "f20", 1, 60, 2)]
    eq(csv_rows(ok("temporary", "--format=csv", db)),
       [["file", "line", "function", "temporary_allocations", "temporary_bytes", "allocations"]] +
       [[f, str(l), fn, str(c), str(b), str(a)] for f, l, fn, c, b, a in want], "temporary csv")
    j = json.loads(ok("temporary", "--format=json", db))
    eq((j["allocations"], j["temporary_allocations"], j["temporary_bytes"]), (12, 5, 195), "temporary json totals")
    eq([(r["file"], r["line"], r["function"], r["temporary_allocations"], r["temporary_bytes"], r["allocations"])
        for r in j["rows"]], want, "temporary json rows")
    eq(csv_rows(ok("temporary", "--format=csv", "--limit=1", db))[1:], [["/t/app.py", "10", "f10", "3", "45", "4"]],
       "temporary --limit")
    text = ok("temporary", db)
    for needle in ("5 temporary allocations (41.7% of 12), 195 B", "3    75.0%       45 B  /t/app.py:10 f10",
                   "1    33.3%       90 B  /t/app.py:40 f40"):
        check(needle in text, "temporary text mentions %r:\n%s" % (needle, text))
    s = json.loads(ok("stats", "--format=json", db))
    eq((s["temporary_allocations"], s["temporary_bytes"]), (5, 195), "stats temporary")
    check("temporary:             5 (41.7%, 195 B)" in ok("stats", db), "stats text temporary")
    # the basic profile: only D (0x4000, thread 2, /src/app.py:13) is freed before its
    # thread allocates again
    basic = os.path.join(TMP, "basic.db")
    eq(csv_rows(ok("temporary", "--format=csv", basic))[1:], [["/src/app.py", "13", "main", "1", "5000", "1"]],
       "temporary on the basic profile")
    nothing = ok("temporary", os.path.join(TMP, "paths.db"))
    check("no temporary allocations" in nothing, "temporary text without any:\n" + nothing)


def sampled_weight(addr, size, n):
    """The analyzer's weight of a block recorded in sampling mode with mean n (pass.c): q =
    1 - e^(-size/n); size/q bytes (rounded); 1/q blocks, as floor(1/q) plus one with
    probability frac(1/q), drawn from a hash of address and size (so that its free
    weighs what its allocation did)."""
    c = 1 / -math.expm1(-size / n)
    m = (1 << 64) - 1
    h = (((addr ^ (size * 0x9E3779B97F4A7C15 & m)) & m) * 0xC2B2AE3D27D4EB4F) & m
    u = (h >> 11) / 9007199254740992.0
    return round(size * c), math.floor(c) + (1 if u < c - math.floor(c) else 0)


def test_sampled_weights():
    """A sampled profile (meta sample_bytes 1000): every figure is weighted, frees as
    allocations are; temporary allocations are not known. Blocks of 100, 300 and 700 bytes (weights of about 10.5, 3.9 and
    2.0 blocks) are freed, one of 1 MB (weight 1: always sampled) is kept, so the frees
    are the allocations but that one, and one block is live at the end."""
    spec = ["meta command sampled", "meta pid 9", "meta clock_ticks_per_sec 1000", "meta clock_start_ticks 0",
            "meta sample_bytes 1000"]
    line_code(spec, [10, 20])
    blocks = [(0x1000, 100), (0x2000, 300), (0x3000, 700)]
    ts = 1
    for addr, size in blocks:
        spec += ["alloc 1 %d %x %d 1" % (ts, addr, size), "free 1 %d %x" % (ts + 1, addr)]
        ts += 2
    spec.append("alloc 1 %d 9000 1000000 2" % ts)
    db = mk("sampled.db", "\n".join(spec) + "\n")
    w = [sampled_weight(a, s, 1000) for a, s in blocks]
    freed = sum(c for _, c in w)
    check(freed >= 10 + 3 + 2, "weights %r" % w)
    s = json.loads(ok("stats", "--format=json", db))
    eq((s["allocations"], s["frees"], s["allocated_bytes"], s["end_bytes"], s["unmatched_frees"]),
       (freed + 1, freed, sum(b for b, _ in w) + 1000000, 1000000, 0), "sampled stats")
    # temporary needs every allocation (the thread's next one is most often not sampled;
    # py_alloc read 94% temporary sampled, 0.1% exact): not known
    eq((s["temporary_allocations"], s["temporary_bytes"]), (None, None), "sampled temporary")
    text = ok("stats", db)
    check("frees:                 %d\n" % freed in text, "stats text frees:\n" + text)
    check("temporary:             not known in a sampled profile\n" in text, "stats text temporary:\n" + text)
    # every header says the figures are estimates
    eq(s["sample_bytes"], 1000, "sampled JSON header")
    for cmd in ("report", "peak", "leaks", "stats"):
        check("sampled: one allocation recorded per 1000 B allocated on average; figures are estimates\n"
              in ok(cmd, db), "%s text header of a sampled profile" % cmd)
    eq(json.loads(ok("stats", "--format=json", os.path.join(TMP, "temporary.db")))["sample_bytes"], 0,
       "an exact profile's JSON header")
    rc, out, err = run("temporary", db)
    eq((rc, out, err.count("\n"), "sampled profile" in err), (1, "", 1, True), "temporary on a sampled profile: %r" % err)


def test_progress():
    """The progress bar goes to a terminal only, and is erased."""
    import pty
    db = os.path.join(TMP, "basic.db")
    master, slave = pty.openpty()
    env = dict(os.environ, MEMPROF_PROGRESS_AFTER_MS="0")
    p = subprocess.run([MEMPROF, "report", "--format=csv", db], stdout=subprocess.PIPE, stderr=slave,
                       env=env, timeout=60)
    os.close(slave)
    tty = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        tty += chunk
    os.close(master)
    eq(p.returncode, 0, "progress run exit status")
    check(b"memprof: reading events [" in tty and b"chunks)" in tty, "progress bar drawn on a terminal: %r" % tty)
    check(tty.endswith(b"\r\x1b[K"), "progress bar erased at the end: %r" % tty)
    eq(p.stdout.decode(), ok("report", "--format=csv", db), "stdout unchanged by the progress bar")
    p = subprocess.run([MEMPROF, "report", db], capture_output=True, env=env)
    eq(p.stderr, b"", "no progress bar when stderr is not a terminal")


LINES_SRC = """import os

def helper(n):
    x = bytearray(n)
    return x

class K:
    def method(self):
        return [0] * 10
def main():
    # comment
    a = helper(100)
    b = [bytearray(5) for _ in range(3)]
    c = 1

    d = 2
    e = 3
    return a, b
main()
"""


def test_lines():
    """`lines FILE[:FUNCTION]`: every line of a file or function, allocations charged to
    the innermost frame in that file (function)."""
    src = os.path.join(TMP, "lines_app.py")
    with open(src, "w") as f:
        f.write(LINES_SRC)
    other = "/other/dir/lines_app.py"
    spec = """meta command python3 lines_app.py
meta pid 11
meta clock_ticks_per_sec 1000
meta clock_start_ticks 0
code 1 {tmp}/./lines_app.py main main 10 e900ea04d80408f10a000103f8
code 2 {tmp}/lines_app.py helper helper 3 e800e802e802
code 3 {tmp}/lines_app.py method K.method 8 e800e802
code 4 {tmp}/lines_app.py <listcomp> main.<locals>.<listcomp> 13 e800
code 5 {tmp}/lines_app.py <module> <module> 1 e800e824
code 6 /lib/other.py g g 1 e800
code 7 {other} h h 1 e800
node 1 0 py:5:1
node 2 1 py:1:3
node 3 2 py:2:1
node 4 2 py:1:5
node 5 4 py:4:0
node 6 1 py:2:1
node 7 1 py:3:1
node 8 3 py:6:0
node 9 2 py:1:8
node 10 1 py:1:7
node 11 0 py:6:0
node 12 0 py:7:0
alloc 1 10 a 100 3
alloc 1 20 b 200 8
alloc 1 30 c 30 5
alloc 1 40 d 40 6
alloc 1 50 e 50 7
alloc 1 60 f 60 9
alloc 1 70 1a 70 10
alloc 1 80 1b 80 11
alloc 1 85 1c 7 12
free 1 90 a
free 1 95 1a
""".format(tmp=TMP, other=other)
    db = mk("lines.db", spec)
    # (the frames: 1 <module>:19 > 2 main:12 > 3 helper:4 > 8 other.py; 2 > 4 main:13 >
    # 5 listcomp:13; 1 > 6 helper:4; 1 > 7 K.method:9; 2 > 9 main, no line; 1 > 10 main:18)
    rel = os.path.basename(TMP) + "/lines_app.py"
    text = lambda line: LINES_SRC.splitlines()[line - 1] if line else ""

    def rows(*args, where=None):
        return csv_rows(subprocess.run([MEMPROF, "lines", "--format=csv", *args, db], capture_output=True,
                                       cwd=where).stdout.decode())

    def want(lst):
        return [["file", "line", "peak_bytes", "allocated_bytes", "allocations", "end_bytes", "text"]] + \
               [[src, str(l), str(p), str(a), str(c), str(e), text(l)] for l, p, a, c, e in lst]

    # the whole file: helper:4 gets a, b (other.py is outside) and d
    file_rows = [(0, 60, 60, 1, 60), (4, 340, 340, 3, 240), (9, 50, 50, 1, 50), (13, 30, 30, 1, 30),
                 (18, 70, 70, 1, 0)]
    eq(rows(rel), want(file_rows), "lines FILE (suffix) csv")
    eq(rows(src), want(file_rows), "lines FILE (absolute) csv")
    eq(rows("./" + os.path.basename(src), where=TMP), want(file_rows), "lines FILE relative to our directory")
    # main: a and b at its line 12 (the call of helper), c in the comprehension nested in it
    main_rows = [(0, 60, 60, 1, 60), (12, 300, 300, 2, 200), (13, 30, 30, 1, 30), (18, 70, 70, 1, 0)]
    eq(rows(rel + ":main"), want(main_rows), "lines FILE:main csv")
    # CPython before 3.11, whose code objects have bare names: code nested in main is the
    # code whose first line is among main's own lines (the comprehension's, 13 in 10-18)
    db_bare = mk("lines_bare.db", spec.replace("meta pid 11", "meta pid 11\nmeta python_version 3.10.13")
                 .replace("main.<locals>.<listcomp>", "<listcomp>").replace("method K.method", "method method"))
    bare = lambda arg: csv_rows(subprocess.run([MEMPROF, "lines", "--format=csv", arg, db_bare], capture_output=True)
                                .stdout.decode())
    eq(bare(rel + ":main"), want(main_rows), "lines FILE:main, bare names (3.10)")
    eq(bare(rel + ":helper"), want([(4, 340, 340, 3, 240)]), "lines FILE:helper, bare names (3.10)")
    eq(bare(rel + ":<module>"), want(file_rows), "lines FILE:<module>, bare names (3.10)")
    eq(rows(rel + ":K.method"), want([(9, 50, 50, 1, 50)]), "lines FILE:qualname")
    # the module: all of the file's code is nested in it (its functions' qualnames do not
    # name it), as code nested in a function is in the function's view
    eq(rows(rel + ":<module>"), want(file_rows), "lines FILE:<module> is the whole file")
    eq(rows(rel + ":method"), want([(9, 50, 50, 1, 50)]), "lines FILE:name")
    j = json.loads(ok("lines", "--format=json", rel + ":main", db))
    eq((j["file"], j["function"], j["first_line"], j["last_line"], j["source_found"], j["peak_bytes"],
        j["allocated_bytes"], j["allocations"], j["end_bytes"], j["leaked_bytes"]),
       (src, "main", 10, 18, True, 460, 460, 5, 290, 290), "lines json totals")
    eq([(r["line"], r["peak_bytes"], r["allocated_bytes"], r["allocations"], r["end_bytes"], r["text"])
        for r in j["rows"]], [(l, p, a, c, e, text(l)) for l, p, a, c, e in main_rows], "lines json rows")

    out = ok("lines", rel + ":main", db)
    table = out.split("=" * 20)[-1].strip("=\n").splitlines()
    eq([r.split()[0] for r in table], [str(n) for n in range(10, 19)] + ["?"], "lines text lists every line of main")
    check("%s, function main (lines 10-18)" % src in out, "lines text names file and function:\n" + out)
    check("460 B allocated in 5 allocations, 460 B at the peak, 290 B live at end" in out, "lines text totals:\n" + out)
    eq(table[2], "    12      300 B      300 B          2      200 B      a = helper(100)", "lines text row with data")
    eq(table[1], "    11%s  %s" % (" " * 44, "    # comment"), "lines text row without data")
    eq(table[5], "    15", "lines text empty line")
    out = ok("lines", rel, db)
    table = out.split("=" * 20)[-1].strip("=\n").splitlines()
    eq([r.split()[0] for r in table], [str(n) for n in range(1, 20)] + ["?"], "lines text lists every line of the file")

    # no source: only the lines with data
    eq(csv_rows(ok("lines", "--format=csv", "/lib/other.py", db))[1:], [["/lib/other.py", "1", "280", "280", "2", "280", ""]],
       "lines of a file without source")
    out = ok("lines", "other.py", db)
    check("(source not found: /lib/other.py)" in out and "\n     1      280 B" in out, "lines text without source:\n" + out)

    for args, needle in (((rel + ":nothing",), "no function 'nothing' in %s (the profile has: main, helper, K.method, <module>)" % src),
                         (("lines_app.py",), "'lines_app.py' matches several files"),
                         (("app.py",), "no Python code from 'app.py'"),
                         (("/lib/other.py:main",), "no function 'main' in /lib/other.py")):
        rc, so, se = run("lines", *args, db)
        eq((rc, so, len(se.splitlines())), (1, "", 1), "lines %s: exit 1 with one line" % args[0])
        check(needle in se, "lines %s says %r: %r" % (args[0], needle, se))
    # a plain name that two functions have is an error naming both (it merged them); a
    # function not there lists every one of the file's, the end counted when too many
    spec = ("meta command python3 m.py\nmeta pid 12\nmeta clock_ticks_per_sec 1000\n"
            "code 1 /src/m.py __init__ A.__init__ 2 e800\ncode 2 /src/m.py __init__ B.__init__ 6 e800\n" +
            "".join("code %d /src/m.py f%d f%d %d e800\n" % (3 + i, i, i, 10 + i) for i in range(200)) +
            "node 1 0 py:1:0\nalloc 1 1 a 10 1\n")
    mdb = mk("ambiguous.db", spec)
    rc, so, se = run("lines", "m.py:__init__", mdb)
    eq((rc, se), (1, "memprof: lines: '__init__' in /src/m.py is A.__init__, B.__init__: name one\n"),
       "lines with an ambiguous plain name")
    eq(csv_rows(ok("lines", "--format=csv", "m.py:A.__init__", mdb))[1:], [["/src/m.py", "2", "10", "10", "1", "10", ""]],
       "lines with the qualname")
    rc, so, se = run("lines", "m.py:g", mdb)
    check(rc == 1 and len(se.splitlines()) == 1 and "(the profile has: A.__init__, B.__init__, f0, f1, " in se and
          re.search(r", f\d+ and \d+ more\)$", se.strip()), "lines: the functions listed, the rest counted: %r" % se)

    outf = os.path.join(TMP, "lines-fail.txt")
    rc, so, se = run("lines", "-o", outf, "app.py", db)
    check(rc == 1 and not os.path.exists(outf), "a failed command leaves no -o file")
    with open(outf, "w") as f:
        f.write("an earlier report\n")
    rc, so, se = run("lines", "-o", outf, "app.py", db)
    eq((rc, open(outf).read()), (1, "an earlier report\n"), "a failed command leaves an existing -o file as it was")
    check(not [f for f in os.listdir(TMP) if f.startswith("lines-fail.txt.")], "no temporary file left")
    copy = os.path.join(TMP, "lines-copy.db")
    shutil.copyfile(db, copy)
    rc, so, se = run("stats", "-o", copy, copy)
    eq((rc, len(se.splitlines()) >= 1, "would overwrite the profile" in se), (2, True, True),
       "-o naming the profile it reads: %r" % se)
    eq(open(copy, "rb").read(), open(db, "rb").read(), "the profile named by -o left as it was")
    rc, so, se = run("stats", "-o", os.devnull, db)
    eq((rc, os.path.exists(os.devnull) and not os.path.isfile(os.devnull)), (0, True), "-o /dev/null stays a device")
    rc, so, se = run("lines", db)
    eq(rc, 2, "lines without FILE.py is a usage error")


def folded(text):
    return [l.rsplit(" ", 1) for l in text.splitlines()]


def test_flamegraph():
    """Folded stacks per metric (outermost first, children in label order, equal labels
    merged), and the SVG: well-formed, self-contained, widths proportional."""
    import xml.etree.ElementTree as ET
    basic = os.path.join(TMP, "basic.db")
    top = "0x1000 (??)"
    want = {
        "peak": [(top + ";/src/app.py:12 main;0x2000 (??)", 50), (top + ";/src/app.py:13 main", 5000),
                 (top + ";/src/app.py:18 main", 2000)],
        "allocated": [(top + ";/src/app.py main", 10), (top + ";/src/app.py:12 main", 600),
                      (top + ";/src/app.py:12 main;/src/lib/util.py:100 Util.helper", 1000),
                      (top + ";/src/app.py:12 main;/src/lib/util.py:100 Util.helper;0x3000 (??)", 300),
                      (top + ";/src/app.py:12 main;0x2000 (??)", 50), (top + ";/src/app.py:13 main", 5000),
                      (top + ";/src/app.py:18 main", 2000), (top + ";/src/real.py:3 f", 64), ("0x4000 (??)", 40)],
        "end": [(top + ";/src/app.py main", 10),
                (top + ";/src/app.py:12 main;/src/lib/util.py:100 Util.helper;0x3000 (??)", 300),
                (top + ";/src/app.py:12 main;0x2000 (??)", 50), (top + ";/src/app.py:18 main", 2000),
                (top + ";/src/real.py:3 f", 64), ("0x4000 (??)", 40)],
        "leaked": [(top + ";/src/app.py main", 10), (top + ";/src/app.py:12 main", 500),
                   (top + ";/src/real.py:3 f", 64), ("0x4000 (??)", 40)],
    }
    for metric, lines in want.items():
        eq(folded(ok("flamegraph", "--format=folded", "--metric=" + metric, basic)), [[a, str(b)] for a, b in lines],
           "flamegraph folded --metric=%s" % metric)
    eq(ok("flamegraph", "--format=folded", basic), ok("flamegraph", "--format=folded", "--metric=peak", basic),
       "flamegraph metric defaults to peak")
    # equal labels merge: /src/demo/../app.py and /src/./app.py are one file
    eq(folded(ok("flamegraph", "--format=folded", os.path.join(TMP, "paths.db"))),
       [["/src/app.py:1 main", "300"], ["/src/app.py:1 main;<frozen\\x20importlib._bootstrap>:1 _load", "30"],
        ["rel.py:1 f", "4"]], "flamegraph merges equal frames")

    svg = os.path.join(TMP, "flame.svg")
    rc, so, se = run("flamegraph", "-o", svg, basic)
    eq((rc, so, se), (0, "", ""), "flamegraph -o")
    text = open(svg).read()
    root = ET.fromstring(text)
    ns = "{http://www.w3.org/2000/svg}"
    eq(root.tag, ns + "svg", "flamegraph is an SVG document")
    check(root.find(ns + "script") is not None and "function zoom" in text and "function unzoom" in text,
          "flamegraph has its inline script")
    for bad in ("href", "src=", "@import", "url(", "@font-face"):
        check(bad not in text, "flamegraph is self-contained (no %r)" % bad)
    titles = {t.find(ns + "title").text.split("\n")[0]: t for t in root.iter(ns + "g") if t.find(ns + "title") is not None}
    eq(sorted(titles), sorted(["all", top, "/src/app.py:12 main", "/src/app.py:13 main", "/src/app.py:18 main",
                               "0x2000 (??)"]), "flamegraph frames")
    g13 = titles["/src/app.py:13 main"]
    eq(g13.find(ns + "title").text.split("\n")[1], "4.88 KiB (5,000 bytes, 70.92%)", "flamegraph frame tooltip")
    eq(g13.find(ns + "rect").get("width"), "%.2f" % (5000 / 7050 * 1180), "flamegraph width proportional to bytes")
    eq(titles["all"].find(ns + "rect").get("width"), "1180.00", "flamegraph root spans the width")
    eq(g13.find(ns + "text").text, "app.py:13 main", "flamegraph box label without directories")
    heading = "".join(root.find(ns + "text").itertext())
    eq(heading, "memprof flamegraph: python3 app.py --x", "flamegraph title with the command line")
    check("bytes live at the heap peak: 6.88 KiB (7,050 bytes)" in text, "flamegraph subtitle")
    if shutil.which("node"):  # the inline script, run against a minimal DOM
        js = json.loads(subprocess.run(["node", os.path.join(HERE, "flamegraph_dom.js"), svg, "/src/app.py:13 main",
                                        "^/src/app\\.py:1[23]"], capture_output=True, check=True).stdout)
        eq(js["details"], "/src/app.py:13 main \u2014 4.88 KiB (5,000 bytes, 70.92%)", "flamegraph hover details")
        eq(js["after_mouseout"], " ", "flamegraph details cleared")
        zoomed = {f["name"]: f for f in js["zoomed"]}
        eq((zoomed["/src/app.py:13 main"]["x"], zoomed["/src/app.py:13 main"]["width"]), ("10.00", "1180.00"),
           "zoom: the frame fills the width")
        eq([(n, zoomed[n]["width"], zoomed[n]["faded"]) for n in ("all", top)],
           [("all", "1180.00", True), (top, "1180.00", True)], "zoom: its callers span the width, faded")
        eq(sorted(n for n, f in zoomed.items() if not f["shown"]),
           sorted(["/src/app.py:12 main", "/src/app.py:18 main", "0x2000 (??)"]), "zoom: the others hidden")
        eq(zoomed["/src/app.py:13 main"]["text"], "app.py:13 main", "zoom: label")
        eq([(f["name"], f["x"], f["width"], f["shown"], f["faded"]) for f in js["reset"]],
           [(t.find(ns + "title").text.split("\n")[0], t.find(ns + "rect").get("x"), t.find(ns + "rect").get("width"),
             True, False) for t in root.find(ns + "g[@id='frames']")], "reset zoom restores every frame")
        eq((js["matched"], sorted(js["marked"])), ("Matched: 71.6%", ["/src/app.py:12 main", "/src/app.py:13 main"]),
           "search: matching frames and their share ((5000 + 50) / 7050)")
        eq(js["cleared"], [" ", 0], "search cleared")
    else:
        print("node not installed: the flame graph's script is not exercised")
    for metric in ("allocated", "end", "leaked"):
        rc, so, se = run("flamegraph", "--metric=" + metric, basic)
        check(rc == 0 and ET.fromstring(so) is not None, "flamegraph --metric=%s svg" % metric)
    empty = ok("flamegraph", mk("flame-empty.db", "meta command true\n"))
    check("(no bytes live at the heap peak)" in empty and ET.fromstring(empty) is not None, "flamegraph of nothing")
    # markup in names is escaped
    db = mk("markup.db", "meta command a<b & 'c'\ncode 1 /x/<&;>.py f<T> f<T> 1 e800\nnode 1 0 py:1:0\n"
                         "alloc 1 1 10 5 1\n")
    root = ET.fromstring(ok("flamegraph", db))
    eq([t.text.split("\n")[0] for t in root.iter(ns + "title")], ["/x/<&;>.py:1 f<T>", "all"],
       "flamegraph escapes names (and keeps a ';', which only the folded format changes)")
    eq(folded(ok("flamegraph", "--format=folded", db)), [["/x/<&,>.py:1 f<T>", "5"]], "folded: ';' in a name is ','")

    for args in (("flamegraph", "--metric=size", basic), ("flamegraph", "--format=png", basic),
                 ("report", "--metric=peak", basic)):
        eq(run(*args)[0], 2, "usage error: %s" % " ".join(args[:2]))


def test_flamegraph_native():
    lines = sites()
    db = os.path.join(TMP, "native.db")
    f = folded(ok("flamegraph", "--format=folded", "--metric=allocated", db))
    eq(sum(int(b) for _, b in f), 2800, "native flamegraph total")
    mine = [s for s, b in f if s.split(";")[0].startswith("mk_sites (") and b == "400"]
    eq(len(mine), 1, "native frame labelled function (file:line): %r" % f)
    check(mine and mine[0].endswith("mkprofile.c:%d)" % lines[0]), "native frame line %r" % mine)
    # DWARF names such as /build/../tests/analyzer/mkprofile.c are shown normalized too
    check(not any("/../" in s or "/./" in s for s, _ in f), "native file names normalized %r" % f)
    rows = json.loads(ok("report", "--format=json", db))["rows"]
    check(not any("/../" in r["file"] or "/./" in r["file"] for r in rows), "report native file names normalized")
    check(any(s.split(";")[-1].startswith("trecurse (") and "tsearch.c:" in s for s, b in f if b == "200")
          or any(s.endswith("(libc.so.6)") for s, b in f if b == "200"), "libc frame %r" % f)


def test_flamegraph_many_stacks():
    """~10k distinct stacks: both formats complete and the folded total is exact (the time
    is printed for information; speed is measured by scripts/bench, never asserted)."""
    import time
    spec = ["meta command many", "meta pid 2", "meta clock_ticks_per_sec 1000", "meta clock_start_ticks 0"]
    for c in range(1, 201):
        spec.append("code %d /big/mod%03d.py fn%d fn%d %d e800e802e802e802e802e802e802e802" % (c, c % 40, c, c, c))
    n = 10000
    for i in range(1, n + 1):
        spec.append("node %d %d py:%d:%d" % (i, i // 4 if i >= 4 else 0, (i * 7) % 200 + 1, i % 8))
    for i in range(1, n + 1):
        spec.append("alloc 1 %d %x %d %d" % (i, 0x1000 + 16 * i, 100 + i % 1000, i))
    db = mk("many.db", "\n".join(spec) + "\n")
    for fmt in ("svg", "folded"):
        t0 = time.monotonic()
        out = ok("flamegraph", "--format=" + fmt, db)
        dt = time.monotonic() - t0
        print("flamegraph --format=%s, %d stacks: %.3f s, %d bytes" % (fmt, n, dt, len(out)))
    eq(sum(int(b) for _, b in folded(out)), sum(100 + i % 1000 for i in range(1, n + 1)), "folded total of many stacks")


def test_plot():
    """RSS and heap over time: a well-formed, self-contained SVG with the peak marked."""
    import xml.etree.ElementTree as ET
    ns = "{http://www.w3.org/2000/svg}"
    basic = os.path.join(TMP, "basic.db")
    out = os.path.join(TMP, "plot.svg")
    eq(run("plot", "-o", out, basic), (0, "", ""), "plot -o")
    text = open(out).read()
    root = ET.fromstring(text)
    ids = {e.get("id"): e for e in root.iter() if e.get("id")}
    txt = lambda e: "".join(e.itertext())
    eq(txt(ids["title"]), "memprof plot: python3 app.py --x", "plot title with the command line")
    eq(txt(ids["peak-label"]), "peak heap 6.88 KiB at 0.600 s", "plot peak label")
    # x: 80 + 850 * 0.6 / 2.0; y: 484 - 420 * (7050 / 2^20) / 25 (the axis ends at 25 MiB)
    eq((ids["peak"].get("cx"), ids["peak"].get("cy")), ("335.0", "483.9"), "plot peak dot position")
    eq((txt(ids["xlabel"]), txt(ids["ylabel"])), ("time (s)", "memory (MiB)"), "plot axis labels")
    eq([txt(e) for e in ids["yticks"]], ["0", "5", "10", "15", "20", "25"], "plot y ticks")
    eq([txt(e) for e in ids["xticks"]], ["%.2f" % (k / 4) for k in range(9)], "plot x ticks")
    eq(len(ids["rss"].get("points").split()), 5, "plot RSS line: one point per sample")
    eq(len(ids["heap"].get("points").split()), 6, "plot heap line: the samples and the peak")
    legend = [txt(e) for e in ids["legend"].iter(ns + "text")]
    eq(legend, ["RSS (resident memory)", "heap (live tracked allocations)"], "plot legend")
    for bad in ("href", "<script", "url(", "@import"):
        check(bad not in text, "plot is self-contained (no %r)" % bad)
    empty = ok("plot", mk("plot-empty.db", "meta command true\n"))
    root = ET.fromstring(empty)
    check("(no RSS samples)" in empty and "peak-label" not in empty, "plot without samples or allocations")
    eq(run("plot", "--format=png", basic)[0], 2, "plot has svg only")


def sites():
    out = subprocess.run([MKPROFILE, "--sites"], capture_output=True, check=True).stdout.decode()
    return {int(k): int(line) for k, line, _ in (l.split() for l in out.splitlines())}


def test_native():
    """Real return addresses of mkprofile (-O0 -g), of libc (qsort's comparator call) and
    of libsqlite3 (sqlite3_exec's callback call), with the module table of the process."""
    lines = sites()
    spec = """meta command ./native
meta pid 9
meta clock_ticks_per_sec 1000000000
modules
node 1 0 self:1
node 2 1 libc
node 3 0 libc
node 4 0 sqlite
node 5 1 self:0
node 6 4 libc
node 7 1 sqlite
node 8 0 ip:10
alloc 1 1 1000 100 2
alloc 1 2 2000 200 3
alloc 1 3 3000 300 4
alloc 1 4 4000 400 5
alloc 1 5 5000 500 6
alloc 1 6 6000 600 7
alloc 1 7 7000 700 8
"""
    db = mk("native.db", spec)
    rows = json.loads(ok("report", "--format=json", db))["rows"]
    got = {(os.path.basename(r["file"]), r["line"], r["function"]): r["allocated_bytes"] for r in rows}
    eq(got.get(("mkprofile.c", lines[1], "mk_sites")), 700,
       "native: innermost frame with a line outside libc (s2: libc skipped; s7: sqlite has no lines) %r" % got)
    eq(got.get(("mkprofile.c", lines[0], "mk_sites")), 400, "native: innermost frame %r" % got)
    sq = [r for r in rows if "libsqlite3" in os.path.basename(r["file"])]
    eq([(r["line"], r["allocated_bytes"]) for r in sq], [(0, 800)],
       "native: no line anywhere -> innermost frame outside libc as function + module %r" % rows)
    check(sq and sq[0]["function"] != "", "native: function named for the sqlite frame %r" % sq)
    lc = [r for r in rows if r["allocated_bytes"] == 200]
    check(len(lc) == 1 and "mkprofile" not in lc[0]["file"], "native: libc-only stack gets its own row %r" % lc)
    eq([(r["file"], r["line"], r["function"]) for r in rows if r["allocated_bytes"] == 700 and r["file"] == "??"],
       [("??", 0, "0x10")], "native: unknown ip")
    pk = json.loads(ok("peak", "--format=json", db))
    s2 = [x for x in pk["stacks"] if x["stack"] == 2][0]
    eq(os.path.basename(s2["frames"][-1]["file"] or "") + ":" + str(s2["frames"][-1]["line"]),
       "mkprofile.c:%d" % lines[1], "peak: outermost frame of stack 2")
    check("libc" in (s2["frames"][0]["module"] or ""), "peak: innermost frame of stack 2 in libc %r" % s2)


def test_truncated():
    """The truncation marker (a Python frame of code id 0) is the outermost frame of a
    stack cut short: shown as such by peak/leaks/flamegraph, never a row of its own, and
    the lines below it are attributed as usual (Python and native)."""
    lines = sites()
    spec = """meta command python3 deep.py
meta pid 12
meta clock_ticks_per_sec 1000
modules
code 1 /src/app.py main main 10 e900ea04d80408f10a000103f8
node 1 0 py:0:0
node 2 1 py:1:3
node 3 0 py:1:3
node 4 1 self:0
alloc 1 1 1000 100 2
alloc 1 2 2000 200 3
alloc 1 3 3000 400 4
"""
    db = mk("truncated.db", spec)
    rows = json.loads(ok("report", "--format=json", db))["rows"]
    got = sorted((os.path.basename(r["file"]), r["line"], r["allocated_bytes"]) for r in rows)
    eq(got, [("app.py", 12, 300), ("mkprofile.c", lines[0], 400)],
       "truncated: rows of the frames below the marker, none of the marker's")
    pk = {x["stack"]: x["frames"] for x in json.loads(ok("peak", "--format=json", db))["stacks"]}
    marker = {"function": "[frames not recorded]", "file": "", "line": 0, "module": "", "python": False,
              "truncated": True}
    eq((len(pk[2]), pk[2][-1]), (2, marker), "truncated: peak --format=json, the cut stack ends with the marker")
    eq([f.get("truncated") for f in pk[3]], [None], "truncated: the whole stack has no marker")
    eq((len(pk[4]), pk[4][-1]), (2, marker), "truncated: a native stack cut short")
    text = ok("peak", db)
    eq(text.count("      [frames not recorded]\n"), 2, "truncated: peak's text shows the marker twice\n" + text)
    fold = dict((a, b) for a, b in folded(ok("flamegraph", "--format=folded", db)))
    eq(sorted(re.sub(r"\(/\S*/", "(", k) for k in fold),
       sorted(["[frames not recorded];/src/app.py:12 main", "/src/app.py:12 main",
               "[frames not recorded];mk_sites (mkprofile.c:%d)" % lines[0]]),
       "truncated: folded stacks start at the marker %r" % fold)
    # `lines` of a file with no frame among a cut stack's kept ones: those allocations
    # may belong to it (their outer frames are lost), which one note says
    spec2 = spec.replace("alloc 1 1 1000 100 2\n", "code 2 /src/other.py f f 1 e800\nnode 5 0 py:2:0\n"
                                                   "alloc 1 1 1000 100 2\nalloc 1 4 5000 50 5\n")
    db2 = mk("truncated-lines.db", spec2)
    rc, out, err = run("lines", "/src/other.py", db2)
    eq((rc, err), (0, "memprof: note: 1 allocation (100 B) in Python stacks deeper than memprof keeps (the "
                      "innermost 128 frames) has no frame of /src/other.py among those kept, and may belong here "
                      "too\n"), "lines: the note on cut stacks")
    rc, out, err = run("lines", "/src/app.py", db2)
    eq((rc, err), (0, ""), "lines of the file whose frames the cut stack kept: no note")


def test_stacks_grouped():
    """peak and leaks: stacks that read the same are one entry (two instructions of one
    line, two nodes), and --focus=PATH cuts each stack at its innermost frame under PATH
    (before, two entries with the same text, and --focus changed nothing)."""
    spec = """meta command python3 app.py
meta pid 13
meta clock_ticks_per_sec 1000
code 1 /src/app.py main main 5 ee00
code 2 /usr/lib/lib.py f f 20 ee00
code 3 /usr/lib/lib.py g g 30 ee00
node 1 0 py:1:0
node 2 0 py:1:2
node 3 1 py:2:0
node 4 2 py:2:1
node 5 1 py:3:0
alloc 1 1 1000 100 3
alloc 1 2 2000 200 4
alloc 1 3 3000 400 5
alloc 1 4 4000 8 1
"""
    db = mk("grouped.db", spec)
    for cmd in ("peak", "leaks"):
        pk = json.loads(ok(cmd, "--format=json", db))
        got = [(x["bytes"], x["blocks"], ["%s:%d" % (os.path.basename(f["file"]), f["line"]) for f in x["frames"]])
               for x in pk["stacks"]]
        eq(got, [(400, 1, ["lib.py:30", "app.py:5"]), (300, 2, ["lib.py:20", "app.py:5"]), (8, 1, ["app.py:5"])],
           cmd + ": equal stacks are one entry")
        pk = json.loads(ok(cmd, "--format=json", "--focus=/src", db))
        got = [(x["bytes"], x["blocks"], ["%s:%d" % (os.path.basename(f["file"]), f["line"]) for f in x["frames"]])
               for x in pk["stacks"]]
        eq(got, [(708, 4, ["app.py:5"])], cmd + " --focus=/src: cut at the focused frame")
        pk = json.loads(ok(cmd, "--format=json", "--focus=/elsewhere", db))
        eq(len(pk["stacks"]), 3, cmd + " --focus without a frame under it: whole stacks")
    text = ok("peak", db)
    check("#2  300 B in 2 blocks (42.4%)" in text and "#3  8 B in 1 block (1.1%)" in text, "peak text:\n" + text)


def test_splice():
    """Spliced native chains (schema 4): the native frames between the eval loop and the
    allocator interned once below the chains marker, and one node below each Python stack
    naming the chain's innermost node. Every command sees the Python frames, then the
    chain's; a spliced stack and the same stack interned frame by frame are one stack;
    damaged splices are refused with one line."""
    lines = sites()
    spec = """meta command python3 app.py
meta pid 13
meta clock_ticks_per_sec 1000
modules
code 1 /src/app.py main main 10 e900ea04d80408f10a000103f8
node 1 0 py:1:3
node 2 1 py:1:3
node 3 0 chains
node 4 3 self:1
node 5 4 self:0
node 6 1 splice:5
node 7 2 splice:5
node 8 1 self:1
node 9 8 self:0
node 10 4 libc
node 11 1 splice:10
alloc 1 1 1000 100 6
alloc 1 2 2000 200 7
alloc 1 3 3000 400 9
alloc 1 4 4000 800 11
alloc 1 5 5000 1600 5
"""
    db = mk("splice.db", spec)
    rows = json.loads(ok("report", "--format=json", db))["rows"]
    got = sorted((os.path.basename(r["file"]), r["line"], r["allocated_bytes"]) for r in rows)
    eq(got, [("<no stack>", 0, 1600), ("app.py", 12, 1500)],
       "splice: rows by the innermost Python line; an event naming a chain node has no stack %r" % rows)
    fold = dict((re.sub(r"\(/\S*/", "(", a), int(b)) for a, b in folded(ok("flamegraph", "--format=folded", "--metric=allocated", db)))
    app = "/src/app.py:12 main"
    s1, s0 = "mk_sites (mkprofile.c:%d)" % lines[1], "mk_sites (mkprofile.c:%d)" % lines[0]
    libc = [k for k in fold if k.startswith(app + ";" + s1 + ";") and "mkprofile" not in k.split(";")[-1]]
    eq({k: v for k, v in fold.items() if k in (app + ";" + s1 + ";" + s0, app + ";" + app + ";" + s1 + ";" + s0)},
       {app + ";" + s1 + ";" + s0: 500, app + ";" + app + ";" + s1 + ";" + s0: 200},
       "splice: folded stacks, the spliced and the interned one merged %r" % fold)
    eq([fold[k] for k in libc], [800], "splice: a second chain sharing the first one's outer frame %r" % fold)
    check(not any("chains" in k or "not recorded" in k for k in fold), "splice: no marker frames %r" % fold)
    pk = json.loads(ok("peak", "--format=json", db))["stacks"]
    eq(sorted((x["bytes"], len(x["frames"])) for x in pk), [(200, 4), (500, 3), (800, 3), (1600, 0)],
       "splice: peak, one stack for the spliced and the interned %r" % pk)
    old = mk("splice-v3.db", BASIC_SPEC + "meta schema_version 3\n")
    ok("report", old)
    # version 3 has no splices: such a frame there is an unknown Python frame, as before
    v3 = mk("splice-v3-frame.db", spec.replace("meta pid 13", "meta pid 13\nmeta schema_version 3"))
    eq(run("report", v3)[0], 0, "splice: a version 3 file is not expanded")
    # a chain longer than the capture makes (33 frames) is damage, and bounds the expansion
    long_chain = "".join("node %d %d self:%d\n" % (20 + k, 3 if k == 0 else 19 + k, k % 2) for k in range(65))
    bad(mk("splice-long.db", spec.split("alloc")[0] + long_chain + "node 100 1 splice:84\n"),
        "a chain of 65 frames", "a chain too long")
    fine = "".join("node %d %d self:%d\n" % (20 + k, 3 if k == 0 else 19 + k, k % 2) for k in range(64))
    ok("report", mk("splice-64.db", spec.split("alloc")[0] + fine + "node 100 1 splice:83\nalloc 1 1 1000 100 100\n"))
    bad(mk("v2.db", BASIC_SPEC + "meta schema_version 2\n"), "schema version 2", "schema version '2'")
    base = spec.split("alloc")[0]
    for what, extra in (("a splice of no chain", "node 12 1 splice:2\n"),
                        ("a splice below the root", "node 12 0 splice:5\n"),
                        ("a splice of no chain", "node 12 1 splice:12\n"),
                        ("a chain node out of place", "node 12 4 splice:5\n"),
                        ("a chain node out of place", "node 12 1 chains\n")):
        bad(mk("splice-bad.db", base + extra), "corrupt splice: " + extra.strip(), what)


def test_generations():
    """An object unloaded and another loaded at its address: native frames carry the module
    generation, and each resolves in the module of its generation although the two overlap.
    Here libsqlite3 is placed over mkprofile itself, first seen in generation 1 (its row
    written first: rows are not taken in id order)."""
    lines = sites()
    spec = """meta command ./generations
meta pid 10
meta clock_ticks_per_sec 1000000000
overlay sqlite 1
modules
node 1 0 self:0
node 2 0 self:0@1
node 3 0 self:1@2
node 4 0 self:1@0
alloc 1 1 1000 100 1
alloc 1 2 2000 200 2
alloc 1 3 3000 300 3
alloc 1 4 4000 400 4
"""
    db = mk("generations.db", spec)
    rows = json.loads(ok("report", "--format=json", db))["rows"]
    got = {(os.path.basename(r["file"]), r["line"], r["function"]): r["allocated_bytes"] for r in rows}
    eq(got.get(("mkprofile.c", lines[0], "mk_sites")), 100, "generations: generation 0 in mkprofile %r" % got)
    eq(got.get(("mkprofile.c", lines[1], "mk_sites")), 400, "generations: generation 0 in mkprofile %r" % got)
    sq = sorted(r["allocated_bytes"] for r in rows if "libsqlite3" in os.path.basename(r["file"]))
    eq(sq, [200, 300], "generations: generations 1 and 2 in libsqlite3 %r" % rows)
    pk = json.loads(ok("peak", "--format=json", db))
    mods = {x["stack"]: os.path.basename(x["frames"][0]["module"] or "") for x in pk["stacks"]}
    check(mods.get(1, "").startswith("mkprofile") and mods.get(2, "").startswith("libsqlite3")
          and mods.get(3, "").startswith("libsqlite3") and mods.get(4, "").startswith("mkprofile"),
          "generations: peak stack frames in their own generation's module %r" % mods)


def test_random():
    """Random multi-threaded workload against a reference model of the pass."""
    rnd = random.Random(12345)
    nthreads, nstacks = 5, 40
    spec = ["meta command random", "meta pid 1",
            "meta clock_start_ticks 0", "meta clock_ticks_per_sec 1000", "chunk 7"]
    for c in range(1, nstacks + 1):
        # one code object per stack, one line each: row i <-> stack i
        spec.append("code %d /r/f%02d.py fn%d fn%d %d e800" % (c, c, c, c, c))  # code 13, 1 unit, +0
        spec.append("node %d 0 py:%d:0" % (c, c))
    events = []  # (ts, rank, thread, kind, addr, size, stack)
    live = {}
    per_thread_ts = [0] * (nthreads + 1)
    addrs = [0x1000 + 16 * i for i in range(300)]
    ts = 0
    for i in range(6000):
        ts += rnd.choice((0, 0, 1, 2, 5))
        t = rnd.randint(1, nthreads)
        r = rnd.random()
        if r < 0.002 and i > 3000:
            events.append((ts, 2, t, "end", 0, 0, 0))
        elif r < 0.45 and live:
            a = rnd.choice(sorted(live))
            del live[a]
            events.append((ts, 0, t, "free", a, 0, 0))
        elif r < 0.47:
            events.append((ts, 0, t, "free", 0xdead0, 0, 0))
        else:
            a = rnd.choice(addrs)
            live[a] = 1
            events.append((ts, 1, t, "alloc", a, rnd.randint(1, 5000), rnd.randint(1, nstacks)))
    # write per thread in order; the analyzer must merge them back
    for t in range(1, nthreads + 1):
        for e in events:
            if e[2] == t:
                if e[3] == "alloc":
                    spec.append("alloc %d %d %x %d %d" % (t, e[0], e[4], e[5], e[6]))
                elif e[3] == "free":
                    spec.append("free %d %d %x" % (t, e[0], e[4]))
                else:
                    spec.append("end %d %d" % (t, e[0]))
    db = mk("random.db", "\n".join(spec) + "\n")

    # reference model: per-thread program order, threads merged by (ts, FREE < ALLOC < END,
    # thread)
    queues = {t: [e for e in events if e[2] == t] for t in range(1, nthreads + 1)}
    heads = {t: 0 for t in queues}
    order = []
    while True:
        live_heads = [(queues[t][h][0], queues[t][h][1], t) for t, h in heads.items() if h < len(queues[t])]
        if not live_heads:
            break
        t = min(live_heads)[2]
        order.append(queues[t][heads[t]])
        heads[t] += 1
    m = {}
    heap = peak = 0
    st = {s: dict(count=0, alloc=0, live=0) for s in range(1, nstacks + 1)}
    at_peak = {s: 0 for s in st}
    end = None
    frees = unmatched = replaced = 0
    for ts_, _, t, kind, a, size, s in order:
        if kind == "alloc":
            if a in m:
                replaced += 1
                osz, os_ = m.pop(a)
                st[os_]["live"] -= osz
                heap -= osz
            m[a] = (size, s)
            st[s]["count"] += 1
            st[s]["alloc"] += size
            st[s]["live"] += size
            heap += size
            if heap > peak:
                peak = heap
                at_peak = {k: v["live"] for k, v in st.items()}
        elif kind == "free":
            if a in m:
                frees += 1
                osz, os_ = m.pop(a)
                st[os_]["live"] -= osz
                heap -= osz
            else:
                unmatched += 1
        else:
            end = {k: v["live"] for k, v in st.items()}
    if end is None:
        end = {k: v["live"] for k, v in st.items()}
    s = json.loads(ok("stats", "--format=json", db))
    eq((s["allocations"], s["frees"], s["unmatched_frees"], s["replaced_allocations"], s["peak_heap_bytes"],
        s["leaked_bytes"], s["end_bytes"], s["threads"]),
       (sum(v["count"] for v in st.values()), frees, unmatched, replaced, peak, heap, sum(end.values()), nthreads),
       "random: totals")
    want = {("/r/f%02d.py" % k, k, "fn%d" % k): (at_peak[k], v["alloc"], v["count"], end[k])
            for k, v in st.items() if v["count"]}
    got = {(r[0], int(r[1]), r[2]): tuple(map(int, r[3:])) for r in csv_rows(ok("report", "--format=csv", db))[1:]}
    eq(got, want, "random: per-line peak/allocated/count/end")


# ---------------------------------------------------------------------------------------
def bad(path, what, needle=None):
    rc, out, err = run("stats", path, timeout=30)
    eq(rc, 1, "%s: exit status (stderr %r)" % (what, err))
    lines = err.splitlines()
    eq(len(lines), 1, "%s: exactly one stderr line: %r" % (what, err))
    check(err.startswith("memprof: %s: " % path), "%s: message names the file: %r" % (what, err))
    if needle:
        check(needle in err, "%s: reason mentions %r: %r" % (what, needle, err))
    eq(out, "", "%s: nothing on stdout" % what)


def test_bad_input(basic):
    bad(os.path.join(TMP, "nonexistent.db"), "nonexistent", "No such file")
    bad(TMP, "directory", "directory")
    empty = os.path.join(TMP, "empty.db")
    open(empty, "w").close()
    bad(empty, "empty file", "empty")
    txt = os.path.join(TMP, "text.db")
    with open(txt, "w") as f:
        f.write("hello, I am not a database\n" * 100)
    bad(txt, "text file", "not a SQLite database")
    other = os.path.join(TMP, "other.db")
    c = sqlite3.connect(other)
    c.execute("CREATE TABLE people(name TEXT)")
    c.execute("INSERT INTO people VALUES ('x')")
    c.commit()
    c.close()
    bad(other, "another SQLite database", "not a memprof database")
    # a copy of a profile still being written: its tables are in the -wal file, not copied
    live, copy = os.path.join(TMP, "live.db"), os.path.join(TMP, "live-copy.db")
    c = sqlite3.connect(live)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT)")
    c.commit()
    shutil.copyfile(live, copy)  # the connection is open: nothing checkpointed yet
    c.close()
    bad(copy, "a copy made while the program ran", "copy that file too")
    check(not os.path.exists(copy + "-wal") and not os.path.exists(copy + "-shm"),
          "reading a copy leaves no -wal or -shm beside it")
    bad(mk("v99.db", BASIC_SPEC + "meta schema_version 99\n"),
        "unknown schema version", "schema version '99'")
    bad(mk("nover.db", BASIC_SPEC + "meta schema_version -\n"), "no schema version",
        "not a memprof database")
    # numbers memprof writes, damaged: one line, not figures computed from them (inf made
    # "peak heap 8.00 EiB" and invalid JSON, nan a count of 2^63, -1 a duration of -586376 s)
    for i, (key, value) in enumerate((("sample_bytes", "inf"), ("sample_bytes", "nan"), ("sample_bytes", "-1"),
                                      ("clock_ticks_per_sec", "1e-300"), ("start_time_unix", "nan"),
                                      ("last_ticks", "-1"), ("dropped_events", "-1"), ("queued_bytes_peak", "x"),
                                      ("clock_start_ticks", "99999999999999999999"), ("pid", "abc"),
                                      ("pid", "-5"))):
        bad(mk("meta%d.db" % i, BASIC_SPEC + "meta %s %s\n" % (key, value)), "meta %s %s" % (key, value),
            "damaged file: meta %s is '%s'" % (key, value))
    # samples with a negative time or RSS, or text (a negative time made negative durations)
    for i, (col, value) in enumerate((("ts", -5), ("rss", -1), ("rss", "x"))):
        db = mk("samplebad%d.db" % i, BASIC_SPEC)
        con = sqlite3.connect(db)
        con.execute("UPDATE samples SET %s = ? WHERE rowid = (SELECT MIN(rowid) FROM samples)" % col, (value,))
        con.commit()
        con.close()
        bad(db, "sample %s %r" % (col, value), "damaged file: a sample's time or RSS is negative")
    for mode in ("zstd", "rawsize", "count", "record", "truncate"):
        spec = BASIC_SPEC.replace("alloc 1 1600", "corrupt %s\nalloc 1 1600" % mode)
        bad(mk("corrupt-%s.db" % mode, spec), "corrupt chunk (%s)" % mode, "corrupt event chunk")
    # truncated files: at the header, inside the first page, halfway, one page short
    data = open(basic, "rb").read()
    for n in (10, 100, 1000, len(data) // 2, len(data) - 4096):
        p = os.path.join(TMP, "trunc-%d.db" % n)
        with open(p, "wb") as f:
            f.write(data[:n])
        bad(p, "truncated to %d bytes" % n)
    # every command refuses the same way
    for cmd in ("report", "timeseries", "peak", "leaks"):
        rc, out, err = run(cmd, txt)
        eq((rc, len(err.splitlines()), out), (1, 1, ""), "%s on a text file" % cmd)


def test_usage(basic):
    for args, what in (((), "no arguments"), (("frobnicate", basic), "unknown command"),
                       (("report",), "missing FILE"),
                       (("report", "--format=xml", basic), "bad format"),
                       (("stats", "--format=csv", basic), "format of another command"),
                       (("stats", "--sort=peak", basic), "option of another command"),
                       (("report", "--sort=size", basic), "bad sort"),
                       (("report", "--by=module", basic), "bad by"),
                       (("report", "--limit=-1", basic), "negative limit"),
                       (("report", "--limit=x", basic), "bad limit"),
                       (("report", "--bogus", basic), "unknown option"),
                       (("report", basic, "-o"), "-o without value"),
                       (("report", "-o", "", basic), "-o with an empty name"),
                       (("peak", "--never-freed", basic), "--never-freed on peak"),
                       (("report", "-o=out.txt", basic), "-o=FILE")):
        rc, out, err = run(*args)
        eq(rc, 2, "usage error (%s): %r" % (what, err))
        if not args:  # the whole usage, on stderr
            check(err.startswith("usage: memprof"), "no arguments: the usage on stderr: %r" % err)
            continue
        check(err.count("\n") == 1 and err.endswith("(memprof --help for usage)\n"),
              "usage error (%s) explains on one line of stderr: %r" % (what, err))
    # -o onto SQLite's files beside the profile (a copy of a running program's keeps its
    # tables in the -wal) is refused too, and leaves them alone
    for side in ("-wal", "-shm"):
        with open(basic + side, "wb") as f:
            f.write(b"keep")
        rc, out, err = run("report", "-o", basic + side, basic)
        eq((rc, open(basic + side, "rb").read()), (2, b"keep"), "-o onto the profile's %s file: %r" % (side, err))
        os.unlink(basic + side)
    # file names SQLite would take for a URI or an in-memory database are files
    for name in ("file:x.db", ":memory:"):
        shutil.copyfile(basic, os.path.join(TMP, name))
        p = subprocess.run([MEMPROF, "stats", "--format=json", name], capture_output=True, cwd=TMP, timeout=60)
        eq((p.returncode, p.stderr), (0, b""), "a profile named %s" % name)
        eq(json.loads(p.stdout)["pid"], 4242, "the profile named %s is read" % name)
    rc, out, err = run("--help")
    check(rc == 0 and "report" in out and "timeseries" in out, "--help")
    rc, out, err = run("report", "--help")
    eq(rc, 0, "report --help")
    eq(csv_rows(ok("report", basic, "--format=csv"))[0], CSV_HEADER, "options after FILE")


def test_empty_profile():
    db = mk("noevents.db", "meta command true\nmeta pid 3\n")
    s = json.loads(ok("stats", "--format=json", db))
    eq((s["allocations"], s["peak_heap_bytes"], s["top_lines"], s["histogram"]), (0, 0, [], []),
       "empty profile stats")
    eq(csv_rows(ok("report", "--format=csv", db)), [CSV_HEADER], "empty profile csv")
    eq(ok("timeseries", db), "time_s,rss_bytes,heap_bytes\n", "empty profile timeseries")
    check("no allocations" in ok("report", db), "empty profile text")


def test_edges():
    """Address 0, sizes of 4 GiB and more, stack 0 and stack ids without a node."""
    spec = ("meta command edges\nmeta pid 5\nmeta clock_ticks_per_sec 1000\n"
            "meta clock_start_ticks 0\n"
            "code 1 /e.py f f 1 e800\nnode 1 0 py:1:0\n"
            "alloc 1 1 0 10 1\n"               # address 0
            "alloc 1 2 100 6000000000 1\n"     # 6 GB: 6000000010
            "alloc 1 3 200 4294967295 0\n"     # UINT32_MAX exactly, empty stack: 10294967305 peak
            "free 1 4 100\n"                   # 4294967305 live
            "alloc 1 5 300 7 99\n"             # stack id without a node: counted on the empty stack
            "free 1 6 0\n"                     # 4294967302 live
            "alloc 1 7 0 20 1\n")              # 4294967322 live
    db = mk("edges.db", spec)
    s = json.loads(ok("stats", "--format=json", db))
    eq((s["peak_heap_bytes"], s["peak_time_s"], s["leaked_bytes"], s["frees"], s["unknown_stacks"],
        s["allocated_bytes"]), (10294967305, 0.003, 4294967322, 2, 1, 10294967332), "edges: totals")
    eq(csv_rows(ok("report", "--format=csv", db))[1:],
       [["/e.py", "1", "f", "6000000010", "6000000030", "3", "20"],
        ["<no stack>", "0", "", "4294967295", "4294967302", "2", "4294967302"]], "edges: rows")


def main():
    basic = test_basic()
    test_dropped_and_running()
    test_stopped_early()
    test_wal_recovery()
    test_source_lines()
    test_paths()
    test_temporary()
    test_sampled_weights()
    test_progress()
    test_lines()
    test_native()
    test_flamegraph()
    test_flamegraph_native()
    test_flamegraph_many_stacks()
    test_plot()
    test_generations()
    test_truncated()
    test_fifo_source()
    test_zip_source()
    test_control_characters()
    test_source_encodings()
    test_frozen_source()
    test_stacks_grouped()
    test_splice()
    test_random()
    test_empty_profile()
    test_edges()
    test_merge()
    test_usage(basic)
    test_bad_input(basic)
    print("%d checks, %d failed" % (checks, len(failures)))
    if not failures:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(1 if failures else 0)


main()
