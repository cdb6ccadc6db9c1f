"""Every `memprof` command over several processes' files together
(analyzer/merge.h), on both
interpreters: progs/workers.py, a parent and two forked workers with known blocks at
known lines and times. The peak is the processes' heaps together at their highest, with
each line's share then: a worker that exited before it holds nothing there, though it
never freed its block (counting it would put the peak at 128 MiB, with its line in it).
Allocated bytes and what was live at each process's end add up; the same line in two
processes is one row; the files' order changes nothing."""
import json
import os
import subprocess

import harness
from pycommon import one, prog, pythons, tag

PROG = prog("workers.py")
MIB = 1 << 20
BYTEARRAY = 56 + 1  # object header + the buffer's NUL (3.11)
LINE_A = harness.line_of(PROG, "# parent block A")
LINE_D = harness.line_of(PROG, "# parent block D")
LINE_W = harness.line_of(PROG, "# worker block")


def run_workers(py):
    d = os.path.abspath("run-%d" % abs(hash(py)))
    os.mkdir(d)
    p, files = harness.profile([py, PROG], cwd=d, check_rc=0)
    pids = json.loads(p.stdout)
    by_pid = {int(os.path.basename(f).split(".")[1]): f for f in files}
    harness.expect_eq(sorted(by_pid), sorted([pids["parent"]] + pids["workers"]), tag(py) + " files")
    return pids, by_pid


def merged_rows(files):
    return harness.report_rows(*files)


def row(rows, line, what):
    return harness.row_at(rows, "workers.py", line)


def check(py, files, what):
    w = "%s %s" % (tag(py), what)
    rows = merged_rows(files)
    a, d, wk = row(rows, LINE_A, w), row(rows, LINE_D, w), row(rows, LINE_W, w)
    # at the peak: the parent's A and D, worker 2's block; worker 1's is gone
    harness.expect_eq(a["peak_bytes"], 16 * MIB + BYTEARRAY, w + " A at the peak")
    harness.expect_eq(d["peak_bytes"], 40 * MIB + BYTEARRAY, w + " D at the peak")
    harness.expect_eq(wk["peak_bytes"], 24 * MIB + BYTEARRAY, w + " the workers' line at the peak")
    # both workers' blocks, one row; worker 1's still live at its end
    harness.expect_eq(wk["allocated_bytes"], 72 * MIB + 2 * BYTEARRAY, w + " the workers' line allocated")
    harness.expect_eq(wk["allocations"], 4, w + " the workers' line allocations (object and buffer each)")
    harness.expect_eq(wk["end_bytes"], 48 * MIB + BYTEARRAY, w + " the workers' line at the ends")
    harness.expect_eq(d["end_bytes"], 0, w + " D at the end")
    j = json.loads(harness.analyze("report", "--format=json", *files))
    harness.expect_eq(len(j["processes"]), 3, w + " processes")
    peak = j["peak_heap_bytes"]
    if not 80 * MIB <= peak < 88 * MIB:
        raise AssertionError("%s: peak of all processes %d bytes, want 80 MiB and the interpreters' few" % (w, peak))
    harness.expect_eq(j["clocks_agree"], True, w + " clocks")
    # the peak is when worker 2 had its block: after worker 1 ended, within the run
    starts = {p["pid"]: p for p in j["processes"]}
    return rows, j, starts


def test_workers_together():
    for py in pythons():
        pids, by_pid = run_workers(py)
        files = [by_pid[pids["parent"]]] + [by_pid[p] for p in pids["workers"]]
        rows, j, procs = check(py, files, "parent first")
        w1, w2 = procs[pids["workers"][0]], procs[pids["workers"][1]]
        if not w1["end_s"] <= j["peak_time_s"] and w2["start_s"] <= j["peak_time_s"] <= w2["end_s"]:
            raise AssertionError("%s: peak at %.3f s, worker 1 %.3f-%.3f s, worker 2 %.3f-%.3f s" % (
                tag(py), j["peak_time_s"], w1["start_s"], w1["end_s"], w2["start_s"], w2["end_s"]))
        # the other order: the same figures
        rows2, _, _ = check(py, list(reversed(files)), "workers first")
        key = lambda r: (r["file"], r["line"], r["function"])
        harness.expect_eq(sorted(rows2, key=key), sorted(rows, key=key), tag(py) + " rows in either order")
        # each file alone still reads as before: worker 1's block at its own peak
        alone = harness.report_rows(by_pid[pids["workers"][0]])
        harness.expect_eq(row(alone, LINE_W, "alone")["peak_bytes"], 48 * MIB + BYTEARRAY, tag(py) + " worker 1 alone")
        # over time: every process's samples, their RSS and heaps added up; worker 2's
        # block is in some sample (it is held for a while), worker 1's never beside D
        ts = json.loads(harness.analyze("timeseries", "--format=json", *files))["samples"]
        times = [x["time_s"] for x in ts]
        harness.expect_eq(times, sorted(times), tag(py) + " samples in time order")
        top = max(x["heap_bytes"] for x in ts)
        if not 80 * MIB <= top <= j["peak_heap_bytes"]:
            raise AssertionError("%s: largest heap in the samples %d, peak %d" % (tag(py), top, j["peak_heap_bytes"]))
        n_samples = sum(len(json.loads(harness.analyze("timeseries", "--format=json", f))["samples"]) for f in files)
        harness.expect_eq(len(ts), n_samples, tag(py) + " one row per sample of each process")
        # mprof: the parent's samples as MEM lines, each worker's as CHLD lines, which
        # memory_profiler's own reader takes as its children's (mprof run --multiprocess)
        if os.path.exists("/usr/lib/python3/dist-packages/mprof.py"):
            dat = os.path.abspath("merged.dat")
            harness.analyze("timeseries", "--format=mprof", "-o", dat, *files)
            code = ("import json, sys, mprof\n"
                    "d = mprof.read_mprofile_file(sys.argv[1])\n"
                    "print(json.dumps([len(d['mem_usage']), {k: len(v) for k, v in d['children'].items()}]))\n")
            r = harness.run_plain(["/usr/bin/python3", "-c", code, dat])
            harness.expect_eq(r.returncode, 0, "memory_profiler reads the merged .dat: %s" % r.stderr[-500:])
            n_mem, children = json.loads(r.stdout)
            own = lambda f: len(json.loads(harness.analyze("timeseries", "--format=json", f))["samples"])
            harness.expect_eq(n_mem, own(files[0]), tag(py) + " MEM lines: the parent's samples")
            harness.expect_eq(children, {str(p): own(by_pid[p]) for p in pids["workers"]},
                              tag(py) + " CHLD lines: each worker's samples")
        # the flame graph at the peak: the workers' line under the parent's frames (a
        # forked worker's stack has them), worker 2's block alone
        folded = harness.analyze("flamegraph", "--format=folded", *files).splitlines()
        wline = [l for l in folded if l.rsplit(" ", 1)[0].endswith("workers.py:%d worker" % LINE_W)]
        harness.expect_eq([int(l.rsplit(" ", 1)[1]) for l in wline], [24 * MIB + BYTEARRAY], tag(py) + " flame graph")
        # stats: the processes' totals, the peak of all together, the top line the parent's D
        st = json.loads(harness.analyze("stats", "--format=json", *files))
        alone = [json.loads(harness.analyze("stats", "--format=json", f)) for f in files]
        for k in ("allocations", "frees", "allocated_bytes", "end_bytes", "leaked_bytes", "threads", "samples"):
            harness.expect_eq(st[k], sum(a[k] for a in alone), "%s stats %s: the processes' sum" % (tag(py), k))
        harness.expect_eq(st["peak_heap_bytes"], j["peak_heap_bytes"], tag(py) + " stats peak")
        harness.expect_eq(st["top_lines"][0]["line"], LINE_D, tag(py) + " stats top line")
        # peak: the stacks at the peak of all together, the parent's D first; the
        # workers' line in worker 2's stack (pid) alone
        pk = json.loads(harness.analyze("peak", "--format=json", "--limit=3", *files))["stacks"]
        harness.expect_eq([(s["frames"][0]["line"], s["bytes"], s["pid"]) for s in pk],
                          [(LINE_D, 40 * MIB + BYTEARRAY, pids["parent"]), (LINE_W, 24 * MIB + BYTEARRAY, pids["workers"][1]),
                           (LINE_A, 16 * MIB + BYTEARRAY, pids["parent"])], tag(py) + " peak stacks")
        svg = harness.analyze("plot", *files)
        if "3 processes, duration" not in svg:
            raise AssertionError("%s: plot subtitle: %s" % (tag(py), svg[:1000]))
        text = harness.analyze("report", *files)
        if "3 processes" not in text.splitlines()[0] or "(all processes together)" not in text:
            raise AssertionError("%s: text header: %s" % (tag(py), text[:500]))
        for pid in [pids["parent"]] + pids["workers"]:
            if "pid %d:" % pid not in text:
                raise AssertionError("%s: pid %d not listed: %s" % (tag(py), pid, text[:800]))


def test_bad_inputs():
    pids, by_pid = run_workers(pythons()[0])
    files = sorted(by_pid.values())
    # a damaged file among them: one line naming it, exit 1
    bad = os.path.abspath("bad.db")
    with open(bad, "wb") as f:
        f.write(b"not a database" * 100)
    p = harness.analyze("report", files[0], bad, check=False)
    harness.expect_eq(p.returncode, 1, "damaged file's exit status")
    lines = p.stderr.strip().splitlines()
    if len(lines) != 1 or "bad.db" not in lines[0]:
        raise AssertionError("damaged file: stderr %r" % p.stderr)
    # -o onto one of them is refused before anything is written
    p = harness.analyze("report", "-o", files[1], files[0], files[1], check=False)
    harness.expect_eq(p.returncode, 2, "-o onto an input")
    # lines: the file's lines in every process; a file in none is one line, exit 1
    rows = json.loads(harness.analyze("lines", "--format=json", "workers.py", *files))["rows"]
    alone = json.loads(harness.analyze("lines", "--format=json", "workers.py", files[0]))["rows"]
    harness.expect_eq([r["line"] for r in rows if r["line"] == LINE_W], [LINE_W], "the workers' line in lines")
    harness.expect_eq(sum(r["allocated_bytes"] for r in rows) > sum(r["allocated_bytes"] for r in alone), True,
                      "lines of all files add up")
    p = harness.analyze("lines", "nothere.py", *files, check=False)
    harness.expect_eq((p.returncode, p.stdout, len(p.stderr.strip().splitlines())), (1, "", 1), "lines of a file in none")
    # the same file twice is two processes' worth: allowed, and adds up
    rows = harness.report_rows(files[0], files[0])
    one_rows = harness.report_rows(files[0])
    tot = lambda rs: sum(r["allocated_bytes"] for r in rs)
    harness.expect_eq(tot(rows), 2 * tot(one_rows), "a file given twice")


def test_more_than_four():
    """Six profiles at once: the analyzer merges at most four on threads of their own
    (analyzer/stream.c), the others in place; every event of each is counted once."""
    pids, by_pid = run_workers(pythons()[0])
    files = sorted(by_pid.values())
    key = lambda r: (r["file"], r["line"], r["function"])
    three = {key(r): r for r in harness.report_rows(*files)}
    six = {key(r): r for r in harness.report_rows(*(files + files))}
    harness.expect_eq(sorted(six), sorted(three), "the same rows")
    for k, r in six.items():
        for f in ("allocated_bytes", "allocations", "end_bytes"):
            harness.expect_eq(r[f], 2 * three[k][f], "%s:%d %s twice" % (k[0], k[1], f))
    st3 = json.loads(harness.analyze("stats", "--format=json", *files))
    st6 = json.loads(harness.analyze("stats", "--format=json", *(files + files)))
    for f in ("allocations", "frees", "allocated_bytes", "end_bytes", "leaked_bytes"):
        harness.expect_eq(st6[f], 2 * st3[f], "stats %s twice" % f)


if __name__ == "__main__":
    harness.run(globals())
