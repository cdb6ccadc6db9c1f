"""Python programs ended by signals (progs/signals.py), on both interpreters: the exit
status (the signal) and the output are those of a plain run, a Python SIGTERM handler
still runs, an uncaught KeyboardInterrupt ends as without memprof, a SIGTERM that lands
while the program's thread is inside memprof ends the program at once, and the file is
complete with the block allocated before the signal. signal.getsignal() says what it says
without memprof."""
import os
import signal
import subprocess
import time

import harness
from pycommon import cext_lib, line_sum, one, prog, pythons, tag

PROG = prog("signals.py")
BLOCK = 7000001 + 57
MAP = (128 << 20) + 4096  # what cext.c's handlers map: nothing else maps 128 MiB or more


def big_mappings(st):
    """(count, bytes) of the profile's blocks of 128 MiB to 256 MiB: cext.c's mappings."""
    return [(h["count"], h["bytes"]) for h in st["histogram"] if h["min"] == 1 << 27]


def profile_inside_imports(py, w, script, args, want_stdout):
    """Runs progs/SCRIPT (a cext.c handler while Python's imports keep the main thread
    inside memprof, MEMPROF_TEST_SLOW_CODE_US holding it 5 ms a new code object) and
    checks its exit status, stdout and stderr, and that the profile is complete with
    nothing dropped. Returns the profile's stats and files."""
    p, files = harness.profile([py, prog(script), cext_lib()] + args, env={"MEMPROF_TEST_SLOW_CODE_US": "5000"})
    harness.expect_eq((p.returncode, p.stdout, p.stderr), (0, want_stdout, b""), w + " exit status, stdout, stderr")
    st = harness.stats(one(files, w))
    harness.expect_eq((st["status"], st["dropped_events"]), ("complete", 0), w + " (status, dropped)")
    return st, files


def check(py, how, want_rc):
    w = "%s %s" % (tag(py), how)
    plain = harness.run_plain([py, PROG, how])
    harness.expect_eq(plain.returncode, want_rc, w + " plain exit status")
    p, files = harness.profile([py, PROG, how])
    harness.expect_eq(p.returncode, plain.returncode, w + " exit status")
    harness.expect_eq(p.stdout, plain.stdout, w + " stdout")
    db = one(files, w)
    st = harness.stats(db)
    harness.expect_eq(st["status"], "complete", w + " status")
    harness.expect_eq(st["dropped_events"], 0, w + " dropped")
    rows = harness.report_rows(db)
    line = harness.line_of(PROG, "# L:block")
    harness.expect_eq(line_sum(rows, PROG, line, "allocated_bytes"), BLOCK, w + " bytes at the block line")
    return st


def test_fatal_signals():
    for py in pythons():
        check(py, "self-term", -15)
        check(py, "segv", -11)
        check(py, "abort", -6)


def test_python_signal_handler():
    for py in pythons():
        st = check(py, "handler", 3)
        harness.expect_eq(st["end_marker"], True, "%s handler: end_marker (sys.exit in the handler)" % py)


def test_keyboard_interrupt():
    """Uncaught KeyboardInterrupt: CPython finalizes (the block is freed), then kills
    itself with SIGINT. The file is complete, and what finalization freed is not
    "never freed" (before memprof wrote its file at that kill, the last events were lost
    and 12 MiB read as never freed)."""
    for py in pythons():
        st = check(py, "interrupt", -2)
        harness.expect_eq(st["end_marker"], True, "%s interrupt: end_marker" % py)
        if st["leaked_bytes"] >= BLOCK:
            raise AssertionError("%s interrupt: %d bytes never freed" % (py, st["leaked_bytes"]))


def test_sigterm_inside_memprof():
    """SIGTERM while the program's thread holds the lock of memprof's code table (a new
    code object seen during imports; MEMPROF_TEST_SLOW_CODE_US holds it 5 ms a code
    object, so that the signal lands there): the handler leaves the flush to the sampler
    thread and returns, the thread lets the lock go, and the program dies of SIGTERM with
    its file complete. Flushing in the handler waited for the writer, which waited for the
    lock: 2 s of timeout (5 s here), then a file left "running"."""
    for py in pythons():
        w = "%s imports" % tag(py)
        before = set(f for f in os.listdir(".") if f.endswith(".db"))
        p = subprocess.Popen([py, PROG, "imports"], env=harness.preload_env({"MEMPROF_TEST_SLOW_CODE_US": "5000"}),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        harness.expect_eq(p.stdout.readline(), b"ready\n", w + " first line")
        time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
        harness.expect_eq((p.returncode, out, err), (-15, b"", b""), w + " killed by SIGTERM before the imports ended")
        db = one([f for f in os.listdir(".") if f.endswith(".db") and f not in before], w)
        st = harness.stats(db)
        harness.expect_eq(st["status"], "complete", w + " status")
        rows = harness.report_rows(db)
        line = harness.line_of(PROG, "# L:block")
        harness.expect_eq(line_sum(rows, PROG, line, "allocated_bytes"), BLOCK, w + " bytes at the block line")


def test_getsignal_unchanged():
    """memprof's handlers are installed once the interpreter has read the handlers it
    starts with: signal.getsignal() gives SIG_DFL for SIGTERM and the others, as without
    memprof (it gave None when they were installed first)."""
    code = ("import signal\n"
            "print([repr(signal.getsignal(s)) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGSEGV,"
            " signal.SIGABRT, signal.SIGINT)])\n")
    for py in pythons():
        plain = harness.run_plain([py, "-c", code])
        p, files = harness.profile([py, "-c", code], check_rc=0)
        harness.expect_eq(p.stdout, plain.stdout, "%s getsignal" % tag(py))
        harness.expect_eq(b"Handlers.SIG_DFL" in p.stdout, True, "%s getsignal: %r" % (tag(py), p.stdout))


def test_handler_allocations():
    """A C signal handler (cext.c) that maps and unmaps 128 MiB + 4 KiB, or mallocs and
    frees 1,000 bytes, every 100 microseconds while Python allocates and frees small
    objects at full speed (progs/sigalloc.py): most signals land while the thread is
    inside memprof. Every mapping of the handler's is in the profile (nothing else maps
    128 MiB), and none of the blocks is lost or dropped. Until session 29 a handler's
    allocation that landed while memprof appended a Python free wrote into the same
    words of the thread's block: the file could not be read ("corrupt event chunk",
    3 runs of 3), and about half of the handler's blocks went unrecorded. "burst": 40
    mappings in one handler, 80 events, more than the 64 that memprof's stash held until
    session 31 (it dropped 16 of them whenever the signal landed inside memprof)."""
    for py in pythons():
        for how in ("mmap", "malloc", "burst"):
            w = "%s %s" % (tag(py), how)
            p, files = harness.profile([py, prog("sigalloc.py"), cext_lib(), how, "1000000"])
            harness.expect_eq((p.returncode, p.stderr), (0, b""), w + " exit status and stderr")
            hits = int(p.stdout.split()[-1])
            st = harness.stats(one(files, w))
            harness.expect_eq(st["status"], "complete", w + " status")
            harness.expect_eq(st["dropped_events"], 0, w + " dropped")
            harness.expect_eq(big_mappings(st), [] if how == "malloc" else [(hits, hits * MAP)], w + " 128 MiB mappings")
            kb = sum(h["count"] for h in st["histogram"] if h["min"] == 512)
            if hits < 1000 or kb < (hits if how == "malloc" else 0):
                raise AssertionError("%s: %d handler blocks, %d blocks of 512-1023 bytes" % (w, hits, kb))
            for f in files:
                os.unlink(f)


def test_replayed_mapping_reused():
    """A handler maps and unmaps 128 MiB + 4 KiB while the program's thread is inside
    memprof (Python's imports with MEMPROF_TEST_SLOW_CODE_US: 5 ms a new code object),
    so its two calls are stashed; another thread then maps as much at the same addresses
    (the kernel reuses the hole) and keeps it to the end; the handler's calls are
    replayed after that (progs/sigreuse.py). The other thread's mapping is live at the
    end, and every mapping is in the profile. Until session 32 the replay cut the other
    thread's mapping as if the handler's had replaced it: the profile said it was freed
    (0.6 MB never freed instead of 128.6 MB, 2 runs of 2)."""
    for py in pythons():
        w = tag(py) + " reuse"
        st, files = profile_inside_imports(py, w, "sigreuse.py", ["300"], b"reused 1\n")
        harness.expect_eq(big_mappings(st), [(2, 2 * MAP)], w + " 128 MiB mappings")
        if st["leaked_bytes"] < MAP:
            raise AssertionError("%s: %d bytes never freed: the other thread's mapping is not" % (w, st["leaked_bytes"]))
        for f in files:
            os.unlink(f)


def test_stash_holds_many():
    """A handler that maps and unmaps 128 MiB + 4 KiB 5,000 times in a row (10,000
    events) while the program's thread is inside memprof (Python's imports with
    MEMPROF_TEST_SLOW_CODE_US), so that all of them are kept aside until the thread
    leaves memprof (progs/sigmany.py): every mapping is in the profile, none dropped.
    Until session 33 memprof kept 1,024 events aside a thread and dropped the rest (8,976
    here, every run); that session's fresh-clone test run, tests side by side, had dropped
    432 of test_handler_allocations' "burst" handler (80 events every millisecond)."""
    N = 5000
    for py in pythons():
        w = tag(py) + " many"
        st, files = profile_inside_imports(py, w, "sigmany.py", ["300", str(N)], b"mapped %d\n" % N)
        harness.expect_eq(big_mappings(st), [(N, N * MAP)], w + " 128 MiB mappings")
        for f in files:
            os.unlink(f)


if __name__ == "__main__":
    harness.run(globals())
