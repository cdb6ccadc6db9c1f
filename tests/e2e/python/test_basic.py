"""Python basics, on both interpreters: a line keeping 16 x 8 MiB alive at the peak,
a thread's list alive at the end, a loop of short-lived objects, and a program whose
exit status and output are the same as without memprof. Also PYTHONMALLOC=malloc
(the same figures, nothing recorded twice), tracemalloc started at start-up, and the
pyenv shim (one file only)."""
import json
import os
import shutil
import subprocess
import time

import harness
from pycommon import line_rows, line_sum, one, prog, pythons, tag

PROG = prog("peak16.py")
MIB8 = 8 * 1024 * 1024
BIG = 16 * MIB8
N_LOOP = 100000
N_KEPT = 5000
OBJECT_SIZE = 16   # object(): PyObject_HEAD only (3.11, 64-bit)
# What else lives at the big line at the peak: the list object (56 bytes) and its
# items array (16 pointers, over-allocated while appending), the comprehension's
# frame-less bookkeeping... A few KB at most; a single stray 8 MiB block is 2000x that.
SMALL = 4096


def run_peak16(py, env, w):
    """peak16.py plainly and under memprof: same exit status (7), output and errors.
    Returns the profile."""
    plain = harness.run_plain([py, PROG], env=env)
    p, files = harness.profile([py, PROG], env=env)
    harness.expect_eq(plain.returncode, 7, w + " plain exit status")
    harness.expect_eq(p.returncode, plain.returncode, w + " exit status")
    harness.expect_eq(p.stdout, plain.stdout, w + " stdout")
    harness.expect_eq(p.stderr, plain.stderr, w + " stderr")
    return one(files, w)


def check_peak16(py, env=None):
    w = tag(py)
    db = run_peak16(py, env, w)
    rows = harness.report_rows(db)
    st = harness.stats(db)
    harness.expect_eq(st["end_marker"], True, w + " end_marker")
    harness.expect_eq(st["dropped_events"], 0, w + " dropped_events")

    big = harness.line_of(PROG, "# L:big")
    line_rows(rows, PROG, big)
    peak = line_sum(rows, PROG, big, "peak_bytes")
    if not BIG <= peak <= BIG + SMALL:
        raise AssertionError("%s peak at the big line: %d, want %d + at most %d" % (w, peak, BIG, SMALL))
    harness.expect_eq(line_sum(rows, PROG, big, "end_bytes"), 0, w + " end bytes at the big line")
    alloc = line_sum(rows, PROG, big, "allocated_bytes")
    if not BIG <= alloc <= BIG + SMALL:
        raise AssertionError("%s allocated at the big line: %d" % (w, alloc))
    if st["peak_heap_bytes"] < peak:
        raise AssertionError("%s global peak %d < line peak %d" % (w, st["peak_heap_bytes"], peak))
    # Everything else the program holds at the peak is the interpreter's start-up
    # (a few MB), not another copy of the blocks.
    if st["peak_heap_bytes"] > BIG + 16 * 1024 * 1024:
        raise AssertionError("%s global peak %d too large" % (w, st["peak_heap_bytes"]))

    # The thread's list lives in a global: alive at the end, at the thread's line.
    th = harness.line_of(PROG, "# L:thread")
    end = line_sum(rows, PROG, th, "end_bytes")
    lo = N_KEPT * (OBJECT_SIZE + 8)             # the objects and one pointer each
    hi = N_KEPT * (OBJECT_SIZE + 8 * 13 // 10)  # list over-allocation ≤ ~1/8 (+ slack)
    if not lo <= end <= hi:
        raise AssertionError("%s end bytes at the thread line: %d, want [%d, %d]" % (w, end, lo, hi))
    if st["threads"] < 2:
        raise AssertionError("%s threads: %r" % (w, st["threads"]))
    if "worker" not in " ".join(r["function"] for r in line_rows(rows, PROG, th)):
        raise AssertionError("%s thread line not attributed to worker()" % w)

    # The churn loop: 100k iterations, each allocating at that line; nothing of it
    # is alive at the peak (which is in big(), before) nor at the end.
    ch = harness.line_of(PROG, "# L:churn")
    n = line_sum(rows, PROG, ch, "allocations")
    if n < N_LOOP:
        raise AssertionError("%s allocations at the churn line: %d < %d" % (w, n, N_LOOP))
    if line_sum(rows, PROG, ch, "peak_bytes") > 1024 or line_sum(rows, PROG, ch, "end_bytes") > 1024:
        raise AssertionError("%s churn line alive at peak/end: %r" % (w, line_rows(rows, PROG, ch)))
    return st


def test_peak16_both_pythons():
    for py in pythons():
        check_peak16(py)


def test_mmap_module():
    """mmap.mmap's anonymous mappings are blocks of their line (whole pages), and libc's
    mmap called through ctypes too; pymalloc's arenas are not recorded beside the objects
    they hold."""
    prog_ = prog("mapped.py")
    for py in pythons():
        w = tag(py)
        plain = harness.run_plain([py, prog_])
        p, files = harness.profile([py, prog_])
        harness.expect_eq((p.returncode, p.stdout, p.stderr), (0, plain.stdout, plain.stderr), w + " run")
        db = one(files, w)
        rows = harness.report_rows(db, "--focus=" + os.path.dirname(prog_))
        at = {m: harness.line_of(prog_, "# L:" + m) for m in ("map", "keep", "temp", "objs")}
        # beside the mappings, the line allocates the two mmap objects (a few hundred bytes)
        for field, want in (("allocated_bytes", 68 << 20), ("peak_bytes", 64 << 20), ("end_bytes", 0)):
            got = line_sum(rows, prog_, at["map"], field)
            if not want <= got <= want + 1024:
                raise AssertionError("%s the mmap line's %s: %d, want %d + at most 1024" % (w, field, got, want))
        st = harness.stats(db)
        harness.expect_eq(st["allocators"].get("mmap"), 3, w + " mmap calls recorded")
        # looked up in libc's handle (ctypes): memprof's mmap all the same
        at["ctypes"] = harness.line_of(prog_, "# L:ctypes")
        # (beside ctypes' own objects of the call: a few hundred bytes, some kept on 3.10)
        for field in ("allocated_bytes", "end_bytes"):
            got = line_sum(rows, prog_, at["ctypes"], field)
            if not 2 << 20 <= got <= (2 << 20) + 4096:
                raise AssertionError("%s the ctypes line's %s: %d, want 2 MiB + at most 4096" % (w, field, got))
        objs = line_sum(rows, prog_, at["objs"], "peak_bytes")
        # 400,000 objects of 16 bytes and the list's pointers: ~9.6 MB; arenas counted as
        # well would add their 1 MiB (256 KiB on 3.9) each
        if not 400000 * 16 <= objs <= 400000 * 16 + 400000 * 8 * 1.2 + 65536:
            raise AssertionError("%s objects' line at the peak: %d" % (w, objs))
        if not 64 << 20 < st["peak_heap_bytes"] < (64 << 20) + objs + (8 << 20):
            raise AssertionError("%s peak heap %d" % (w, st["peak_heap_bytes"]))
        # sampled: the mappings exactly (every one recorded), the arenas still not (the
        # sampling wrappers call pymalloc without marking the call memprof's)
        p, files = harness.profile([py, prog_], env={"MEMPROF_SAMPLE_BYTES": str(1 << 20)})
        harness.expect_eq((p.returncode, p.stdout, p.stderr), (0, plain.stdout, plain.stderr), w + " sampled run")
        db = one(files, w + " sampled")
        harness.expect_eq(harness.stats(db)["allocators"].get("mmap"), 3, w + " sampled: mmap calls recorded")
        rows = harness.report_rows(db, "--focus=" + os.path.dirname(prog_))
        got = line_sum(rows, prog_, at["map"], "peak_bytes")
        if not 64 << 20 <= got <= (64 << 20) + (1 << 20) * 2:
            raise AssertionError("%s sampled: the mmap line at the peak: %d" % (w, got))


def test_pythonmalloc_malloc():
    """PYTHONMALLOC=malloc: pymalloc is replaced by malloc underneath the PyMem hooks.
    Same figures, and each allocation still recorded once (at the PyMem level), so the
    event count stays that of the default run (a double count would add ~100%)."""
    for py in pythons():
        default = check_peak16(py)
        st = check_peak16(py, env={"PYTHONMALLOC": "malloc"})
        a, b = default["allocations"], st["allocations"]
        if abs(a - b) > a * 0.05:
            raise AssertionError("%s allocations: %d by default, %d with PYTHONMALLOC=malloc" % (py, a, b))
        if st["allocators"].get("PyObject_Malloc", 0) < N_LOOP:
            raise AssertionError("%s PyObject_Malloc not recorded: %r" % (py, st["allocators"]))


def test_debug_allocators_from_startup():
    """PYTHONMALLOC=debug, pymalloc_debug, malloc_debug and PYTHONDEVMODE=1: CPython's
    pre-initialization replaces the allocators (memprof's wrappers with them) with its
    debug hooks; memprof wraps them again at its next recorded allocation. A program
    that prints one line then records start-up as by default: the same allocations
    within 2% and the same bytes never freed within 4 KiB. Before, some 13,700
    allocations were missed and 0.8-1.2 MiB of the debug hooks' blocks read as never
    freed (their free unseen), with 8,300 unmatched frees. The program imports warnings,
    which the development mode of 3.12 and later imports at start-up (1,000 allocations
    more than a default start-up)."""
    with open("hello.py", "w") as f:
        f.write("import warnings\nprint('hi')\n")
    for py in pythons():
        def run(env):
            p, files = harness.profile([py, "hello.py"], env=env, check_rc=0)
            harness.expect_eq(p.stdout, b"hi\n", "%s %r stdout" % (tag(py), env))
            return harness.stats(one(files, tag(py)))
        base = run({})
        for env in ({"PYTHONMALLOC": "debug"}, {"PYTHONMALLOC": "pymalloc_debug"},
                    {"PYTHONMALLOC": "malloc_debug"}, {"PYTHONDEVMODE": "1"}):
            st = run(env)
            a, b = base["allocations"], st["allocations"]
            if abs(a - b) > a * 0.02 or abs(st["leaked_bytes"] - base["leaked_bytes"]) > 4096 or \
                    st["unmatched_frees"] > base["unmatched_frees"] + 10:
                raise AssertionError("%s %r: allocations %d (default %d), never freed %d (default %d), unmatched "
                                     "frees %d (default %d)" % (tag(py), env, b, a, st["leaked_bytes"],
                                                                base["leaked_bytes"], st["unmatched_frees"],
                                                                base["unmatched_frees"]))


def test_source_changed_after_the_run():
    """The text outputs show each line's source as it is now: a file edited after the run
    is named in one line on stderr (its size or time differs from the sources table),
    after the output, which is unchanged; an unedited one is not."""
    with open("edited.py", "w") as f:
        f.write("keep = bytearray(500000)\n")
    p, files = harness.profile([pythons()[0], "edited.py"], check_rc=0)
    db = one(files, "edited.py")
    def analyze_full(*args):
        r = harness.analyze(*args, check=False)
        return r.returncode, r.stdout, r.stderr
    rc, out, err = analyze_full("report", db)
    harness.expect_eq((rc, err), (0, ""), "report of an unedited program")
    harness.expect_eq("keep = bytearray(500000)" in out, True, "its line's text")
    with open("edited.py", "w") as f:
        f.write("# a comment on top\nkeep = bytearray(500000)\n")
    rc, out2, err = analyze_full("report", db)
    harness.expect_eq(rc, 0, "report after the edit")
    harness.expect_eq(err.count("\n"), 1, "one line on stderr: %r" % err)
    harness.expect_eq(("edited.py changed since the program ran" in err, "lines may not match" in err), (True, True),
                      "the note: %r" % err)
    rc, _, err = analyze_full("lines", "edited.py", db)
    harness.expect_eq((rc, "edited.py changed since the program ran" in err), (0, True), "lines says it too")


def test_frozen_module_source():
    """CPython 3.11 freezes the modules its start-up imports: their frames' file is
    `<frozen importlib._bootstrap_external>`. The report shows their lines' text from the
    interpreter's standard library, which they were frozen from: a program that imports
    a module of its own allocates in _compile_bytecode (`marshal.loads`), both
    interpreters (Debian's /usr/lib/python3.11, pyenv's under its prefix)."""
    with open("mymod.py", "w") as f:
        f.write("DATA = [str(i) for i in range(100)]\n")
    with open("main.py", "w") as f:
        f.write("import mymod\nprint(len(mymod.DATA))\n")
    for py in pythons():
        for c in os.listdir("."):
            if c.startswith("__pycache__"):
                shutil.rmtree(c)
        p, files = harness.profile([py, "-B", "main.py"], check_rc=0)
        db = one(files, tag(py))
        stdlib = subprocess.run([py, "-c", "import os; print(os.path.dirname(os.__file__))"],
                                capture_output=True, text=True, check=True).stdout.strip()
        rows = [r for r in harness.report_rows(db) if r["file"] == "<frozen importlib._bootstrap_external>"]
        if not rows:
            raise AssertionError("%s: no row of <frozen importlib._bootstrap_external>" % tag(py))
        src = open(os.path.join(stdlib, "importlib", "_bootstrap_external.py")).read().split("\n")
        report = harness.analyze("report", "--limit=0", db)
        if not any("marshal.loads" in src[r["line"] - 1] for r in rows):
            raise AssertionError("%s: no row at _compile_bytecode's marshal.loads: %s" % (tag(py), rows))
        for r in rows:
            want = src[r["line"] - 1].strip()
            if want and "%s:%d %s\n%s%s\n" % (r["file"], r["line"], r["function"], " " * 45, want) not in report:
                raise AssertionError("%s: %s:%d shows no text %r:\n%s" % (tag(py), r["file"], r["line"], want,
                                                                         report[:4000]))
        os.unlink(db)


def test_file_name_not_utf8():
    """A module whose file name is not UTF-8 (b'm\\xffx.py': Python holds it as the lone
    surrogate U+DCFF, surrogateescape): the profile names it by its bytes, as the file
    system does, so `lines` finds it by that name and reads its text; JSON shows the byte
    as U+FFFD and stays valid UTF-8."""
    name = b"m\xffx.py"
    with open(name, "wb") as f:
        f.write(b"DATA = bytearray(300000)\n")
    with open("main.py", "w") as f:
        f.write("import importlib\nm = importlib.import_module(b'm\\xffx'.decode('utf-8', 'surrogateescape'))\n")
    for py in pythons():
        p, files = harness.profile([py, "main.py"], check_rc=0)
        db = one(files, tag(py))
        r = subprocess.run([harness.BIN, "lines", name, db], capture_output=True, check=True)
        if b"DATA = bytearray(300000)" not in r.stdout or b"293 KiB" not in r.stdout:
            raise AssertionError("%s lines %r:\n%s" % (tag(py), name, r.stdout.decode(errors="replace")))
        r = subprocess.run([harness.BIN, "report", "--format=json", "--limit=0", db], capture_output=True, check=True)
        rows = json.loads(r.stdout.decode("utf-8"))["rows"]
        mine = [x for x in rows if x["file"].endswith("/m\ufffdx.py")]
        harness.expect_eq([(x["line"], x["allocated_bytes"] >= 300000) for x in mine], [(1, True)],
                          tag(py) + " the row in JSON")
        os.unlink(db)


def test_profile_of_a_running_program():
    """A profile read while its program runs says so ("still running"), not "killed?";
    once the program has ended it is complete."""
    py = pythons()[0]
    p = subprocess.Popen([py, "-c", "import time; x = bytearray(10**6); time.sleep(30)"],
                         env=harness.preload_env({"MEMPROF_OUTPUT": "live.db"}))
    try:
        text = ""
        for _ in range(100):
            time.sleep(0.1)
            r = harness.analyze("stats", "live.db", check=False)
            if r.returncode == 0:
                text = r.stdout
                break
        if "note: the program is still running" not in text or "(the program is still running)" not in text:
            raise AssertionError("stats while the program runs:\n" + text)
    finally:
        p.kill()
        p.wait()
    text = harness.analyze("stats", "live.db")
    if "not closed cleanly (process killed, or its file unwritable?)" not in text or "still running" in text:
        raise AssertionError("stats after SIGKILL:\n" + text)


def test_tracemalloc_at_startup():
    """PYTHONTRACEMALLOC=1: tracemalloc wraps memprof's wrappers during start-up, before
    memprof checks its wrapping (it crashed there once, recursing until the stack ran
    out). The program runs as without memprof, in exact and in sampling mode, and the big
    line is recorded once: 128 MiB at the peak plus tracemalloc's own entries for those
    blocks, not twice that. In sampling mode one sampled entry of tracemalloc's (tens of
    bytes) stands for about 64 KiB, the sampling interval: a few of them are allowed."""
    for py in pythons():
        for mode, env, slack in (("exact", {}, 64 * 1024), ("sampling", {"MEMPROF_SAMPLE_BYTES": "65536"}, 1024 * 1024)):
            env = dict(env, PYTHONTRACEMALLOC="1")
            w = "%s %s" % (tag(py), mode)
            db = run_peak16(py, env, w)
            rows = harness.report_rows(db)
            big = harness.line_of(PROG, "# L:big")
            peak = line_sum(rows, PROG, big, "peak_bytes")
            if not BIG <= peak <= BIG + slack:
                raise AssertionError("%s peak at the big line: %d, want %d + at most %d" % (w, peak, BIG, slack))
            harness.expect_eq(harness.stats(db)["dropped_events"], 0, w + " dropped_events")


def test_time_axis_after_sleep():
    """A Python event made after the program slept or computed without allocating is
    stamped with the time it happened, not its thread's previous event's: the heap of
    sleepfree.py holds its 64 MiB buffer through the 0.5 s sleep (samples 10 ms apart,
    at least 0.4 s of them) and has dropped it for the 0.3 s after. Events made with
    the GIL reuse their thread's last stamp; before the sampler's tick ended that
    reuse, the buffer's free was stamped with its allocation's time and the heap fell
    at once (held 0.00 s)."""
    for py in pythons():
        p, files = harness.profile([py, prog("sleepfree.py")], check_rc=0)
        ts = harness.analyze("timeseries", "--format=json", one(files, py))
        samples = json.loads(ts)["samples"]
        held = [s["time_s"] for s in samples if s["heap_bytes"] >= 64 << 20]
        harness.expect_eq(bool(held), True, "%s: a sample holding the buffer" % py)
        harness.expect_eq(held[-1] - held[0] >= 0.4, True,
                          "%s: heap held the buffer from %.3f s to %.3f s" % (py, held[0], held[-1]))
        after = [s for s in samples if s["time_s"] > held[-1]]
        harness.expect_eq(bool(after) and after[-1]["time_s"] - held[-1] >= 0.2 and
                          all(s["heap_bytes"] < 64 << 20 for s in after), True,
                          "%s: the buffer dropped after the sleep (%d samples after)" % (py, len(after)))


def mprof_read(path):
    """memory_profiler's own reader (mprof.read_mprofile_file, Debian's
    python3-memory-profiler) on PATH: (cmd_line, [MiB], [unix time])."""
    code = ("import json, sys, mprof\n"
            "d = mprof.read_mprofile_file(sys.argv[1])\n"
            "print(json.dumps([d['cmd_line'], d['mem_usage'], d['timestamp']]))\n")
    p = harness.run_plain(["/usr/bin/python3", "-c", code, path])
    if p.returncode != 0:
        raise AssertionError("memory_profiler cannot read %s: %s" % (path, p.stderr.decode()[-2000:]))
    return json.loads(p.stdout)


def held_for(mib, times):
    """How long the samples at or above 64 MiB span, in seconds."""
    held = [t for m, t in zip(mib, times) if m >= 64]
    return held[-1] - held[0] if held else 0.0


def test_mprof_format_against_memory_profiler():
    """`timeseries --format=mprof` is read by memory_profiler's own reader, with the
    command line, the RSS of the profile's samples in MiB and their unix times; and
    memory_profiler measuring the same program (`mprof run`, RSS every 0.1 s) sees the
    same curve: the 64 MiB buffer of sleepfree.py held for about 0.5 s, peaks within
    16 MiB (memprof's own memory is in its RSS)."""
    if not os.path.exists("/usr/lib/python3/dist-packages/mprof.py"):
        raise harness.Skip("python3-memory-profiler is not installed (scripts/setup installs it)")
    py = "/usr/bin/python3"
    before = time.time()
    p, files = harness.profile([py, prog("sleepfree.py")], check_rc=0)
    after = time.time()
    db = one(files, py)
    dat = db + ".dat"
    harness.analyze("timeseries", "--format=mprof", "-o", dat, db)
    cmd, mib, times = mprof_read(dat)
    samples = json.loads(harness.analyze("timeseries", "--format=json", db))["samples"]
    harness.expect_eq(len(mib), len(samples), "one MEM line per sample")
    harness.expect_eq(all(abs(m - s["rss_bytes"] / 2**20) < 0.01 for m, s in zip(mib, samples)), True,
                      "MEM values are the samples' RSS in MiB")
    harness.expect_eq(before - 1 <= times[0] <= times[-1] <= after + 1, True,
                      "MEM times within the run (%.3f..%.3f, run %.3f..%.3f)" % (times[0], times[-1], before, after))
    harness.expect_eq("sleepfree.py" in cmd, True, "CMDLINE names the program: %r" % cmd)
    ours = held_for(mib, times)
    harness.expect_eq(0.4 <= ours <= 1.0, True, "memprof: RSS at 64 MiB or more for %.3f s" % ours)

    theirs_dat = db + ".theirs.dat"
    r = harness.run_plain(["/usr/bin/python3-mprof", "run", "-T", "0.02", "-o", theirs_dat,
                           py, prog("sleepfree.py")])
    harness.expect_eq(r.returncode, 0, "mprof run: %s" % r.stderr.decode()[-500:])
    _, tmib, ttimes = mprof_read(theirs_dat)
    theirs = held_for(tmib, ttimes)
    harness.expect_eq(0.4 <= theirs <= 1.0, True, "memory_profiler: RSS at 64 MiB or more for %.3f s" % theirs)
    harness.expect_eq(abs(max(mib) - max(tmib)) <= 16, True,
                      "peak RSS: memprof %.1f MiB, memory_profiler %.1f MiB" % (max(mib), max(tmib)))


def test_pyenv_shim():
    """python3 on PATH is pyenv's bash shim, which runs helpers and execs the real
    python3: exactly one profile file, and it is the Python program's."""
    shim = shutil.which("python3")
    if not shim:
        raise harness.Skip("no python3 on PATH")
    with open(shim, "rb") as f:
        if not f.read(2) == b"#!":
            raise harness.Skip("python3 on PATH is not a script shim: %s" % shim)
    p, files = harness.profile(["python3", PROG], check_rc=7)
    db = one(files, "pyenv shim")
    st = harness.stats(db)
    if "peak16.py" not in st["command"]:
        raise AssertionError("the one file is not the Python program's: %r" % st["command"])
    rows = harness.report_rows(db)
    big = harness.line_of(PROG, "# L:big")
    peak = line_sum(rows, PROG, big, "peak_bytes")
    if not BIG <= peak <= BIG + SMALL:
        raise AssertionError("shim: peak at the big line %d" % peak)


if __name__ == "__main__":
    harness.run(globals())
