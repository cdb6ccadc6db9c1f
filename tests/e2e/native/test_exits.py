"""Exit paths: the exit status, the signal and the output are those of a plain run, and the
file holds every event recorded before the end (known lines present, exact)."""
import os
import resource
import signal
import subprocess
import time

import harness
from harness import expect_eq
from native_common import MiB, expect_row, marks, one_file, prog, run_both, src

SRC = src("exits.c")
# no core files from the abort/segv runs
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def check_file(db, thread=False, complete=True):
    L = marks(SRC, "BEFORE", "FREED", "LAST", "THREAD")
    rows = harness.report_rows(db)
    expect_row(rows, SRC, L["BEFORE"], "5 x 1 MiB", allocations=5, allocated_bytes=5 * MiB, end_bytes=5 * MiB,
               peak_bytes=5 * MiB)
    expect_row(rows, SRC, L["FREED"], "temporary 4 KiB", allocations=1, allocated_bytes=4096, end_bytes=0,
               peak_bytes=4096)
    # the last allocation before the end reached the file too
    expect_row(rows, SRC, L["LAST"], "last allocation", allocations=1, allocated_bytes=123, end_bytes=123)
    if thread:
        expect_row(rows, SRC, L["THREAD"], "thread allocation", allocations=1, allocated_bytes=777, end_bytes=777)
    s = harness.stats(db)
    expect_eq(s["peak_heap_bytes"], 5 * MiB + 4096, "peak_heap_bytes")
    expect_eq(s["dropped_events"], 0, "dropped_events")
    expect_eq(s["unmatched_frees"], 0, "unmatched_frees")
    if not thread:
        expect_eq((s["allocations"], s["frees"], s["allocated_bytes"], s["end_bytes"]),
                  (7, 1, 5 * MiB + 4096 + 123, 5 * MiB + 123), "(allocations, frees, allocated, end)")
    if complete:
        expect_eq(s["status"], "complete", "status")
    return s


def run_mode(mode, rc):
    p, files = run_both([prog("exits"), mode], expect_rc=rc)
    expect_eq(p.stderr.startswith(b"stderr " + mode.encode() + b"\n"), True, "stderr %r" % p.stderr)
    return one_file(files)


def test_return_status():
    check_file(run_mode("return3", 3))


def test_exit_from_thread():
    db = run_mode("thread4", 4)
    check_file(db, thread=True)
    expect_eq(harness.stats(db)["threads"], 2, "threads")


def test__exit():
    check_file(run_mode("_exit5", 5))


def test_quick_exit():
    check_file(run_mode("quick7", 7))


def test__Exit():
    check_file(run_mode("_Exit6", 6))


def test_abort():
    check_file(run_mode("abort", -signal.SIGABRT), complete=False)


def test_sigsegv():
    check_file(run_mode("segv", -signal.SIGSEGV), complete=False)


def test_sigterm():
    check_file(run_mode("term", -signal.SIGTERM), complete=False)


def test_main_thread_pthread_exit():
    """The main thread ends by pthread_exit, the other ends later: the process ends with
    status 0 when that one does, atexit handlers run, as without memprof (memprof's own
    threads kept it alive forever). (pthread_exit allocates too: loading libgcc_s for
    its unwinding, so the peak is not check_file's.)"""
    db = run_mode("mainexit", 0)
    L = marks(SRC, "BEFORE", "LAST")
    rows = harness.report_rows(db)
    expect_row(rows, SRC, L["BEFORE"], "5 x 1 MiB", allocations=5, allocated_bytes=5 * MiB, end_bytes=5 * MiB)
    expect_row(rows, SRC, L["LAST"], "the late thread's allocation", allocations=1, allocated_bytes=123,
               end_bytes=123)
    s = harness.stats(db)
    expect_eq((s["status"], s["threads"], s["dropped_events"]), ("complete", 2, 0), "(status, threads, dropped)")


def test_library_destructor():
    """A library's destructor runs after memprof's at exit (the loader finalizes preloaded
    libraries first): memprof writes its file last, from libmemprof_fini.so. The block the
    destructor frees is not live at exit, the one it allocates is (before: the freed
    8080 bytes read as live, the 9191 were missing)."""
    dsrc = src("dtorlib.c")
    p, files = run_both([prog("dtor")], expect_rc=0)
    db = one_file(files)
    rows = harness.report_rows(db)
    expect_row(rows, src("dtor.c"), marks(src("dtor.c"), "DTOR_BLOCK")["DTOR_BLOCK"], "the block freed at exit",
               allocations=1, allocated_bytes=8080, end_bytes=0)
    expect_row(rows, dsrc, marks(dsrc, "DTOR_LEAK")["DTOR_LEAK"], "the destructor's block", allocations=1,
               allocated_bytes=9191, end_bytes=9191)
    s = harness.stats(db)
    expect_eq((s["status"], s["leaked_bytes"], s["frees"]), ("complete", 9191, 1), "(status, leaked, frees)")


def test_kill_and_raise_self():
    """A signal with no handler that the program sends itself with kill or raise: the
    kill and raise hooks write everything first (the file is complete)."""
    check_file(run_mode("killusr1", -signal.SIGUSR1))
    check_file(run_mode("raiseusr2", -signal.SIGUSR2))


def test_signals_from_outside():
    """SIGINT (Ctrl-C), SIGHUP, SIGQUIT, SIGPIPE (a reader that went away: `prog | head`),
    SIGUSR1 and SIGALRM sent by another process to a program without handlers of its own: the last allocation, made just before, is in the file (the
    commit interval is 100 ms; the signal comes at once)."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE, signal.SIGUSR1, signal.SIGALRM):
        for f in os.listdir("."):
            os.unlink(f)
        p = subprocess.Popen([prog("exits"), "sleep"], env=harness.preload_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        expect_eq(p.stdout.readline(), b"mode sleep\n", "first line")
        expect_eq(p.stdout.readline(), b"ready\n", "second line")
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
        expect_eq(p.returncode, -sig, "exit status")
        expect_eq(err, b"stderr sleep\n", "stderr")
        check_file(one_file([f for f in os.listdir(".") if f.endswith(".db")]), complete=False)


def test_abort_while_threads_allocate():
    # the aborting thread's events are all there; the busy threads may lose their last
    # unpublished events (a fatal signal is flushed "as far as is safe"), but the run ends
    db = run_mode("abort_busy", -signal.SIGABRT)
    L = marks(SRC, "BEFORE", "FREED", "LAST", "SPIN")
    rows = harness.report_rows(db)
    expect_row(rows, SRC, L["BEFORE"], "5 x 1 MiB", allocations=5, allocated_bytes=5 * MiB, end_bytes=5 * MiB)
    expect_row(rows, SRC, L["FREED"], "temporary 4 KiB", allocations=1, allocated_bytes=4096, end_bytes=0)
    expect_row(rows, SRC, L["LAST"], "last allocation", allocations=1, allocated_bytes=123, end_bytes=123)
    spin = harness.row_at(rows, "/exits.c", L["SPIN"])
    if spin["allocations"] < 1000:
        raise AssertionError("busy threads recorded only %d allocations in 0.2 s" % spin["allocations"])
    expect_eq(spin["allocated_bytes"], 48 * spin["allocations"], "busy threads' bytes")
    expect_eq(harness.stats(db)["threads"], 4, "threads")


def test_own_sigsegv_handler_kept():
    # a handler the program installs itself runs (memprof's fatal-signal handler is only for
    # signals left at their default); its _exit flushes the file
    p, files = run_both([prog("exits"), "handler"], expect_rc=7)
    expect_eq(p.stdout, b"mode handler\nhandled SIGSEGV\n", "stdout")
    check_file(one_file(files))


def test_dispositions_as_without_memprof():
    """sigaction and signal say SIG_DFL where memprof's handler stands in for the default
    action (it showed as a handler, and a program that installs its own only over the
    default did not); the program's handler then runs. Putting back the SIG_DFL it was
    told of puts memprof's handler back: the SIGTERM raised then ends the program as the
    default action would, and the file is complete (without memprof's handler, it was
    left as SIGKILL leaves it)."""
    p, files = run_both([prog("exits"), "dispositions"], expect_rc=-signal.SIGTERM)
    expect_eq(p.stdout, b"mode dispositions\n2:default 15:default 11:default 1:default 13:default 6:default "
                        b"signal:default\nhandled SIGTERM\n", "stdout")
    check_file(one_file(files))


def test_sigkill():
    # commits every 10 ms: the kill a second later leaves a margin of 100 commit
    # intervals for a writer slowed down by a loaded machine (UBSan, CI)
    e = harness.preload_env({"MEMPROF_FLUSH_MS": "10"})
    p = subprocess.Popen([prog("exits"), "sleep"], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        expect_eq(p.stdout.readline(), b"mode sleep\n", "first line")
        expect_eq(p.stdout.readline(), b"ready\n", "second line")
        time.sleep(1.0)
        p.send_signal(signal.SIGKILL)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    expect_eq(p.returncode, -signal.SIGKILL, "exit status")
    expect_eq(err, b"stderr sleep\n", "stderr")
    files = [f for f in os.listdir(".") if f.startswith("memprof.") and f.endswith(".db")]
    db = one_file(files)
    # readable (analyze raises on a non-zero exit) and holds everything committed before
    # the kill: the commit interval is 10 ms, the kill came 1 s after the last allocation
    check_file(db, complete=False)


def test_file_size_limit():
    """Under a file size limit (`ulimit -f`) too small for memprof's file, the program runs
    as without memprof (exit status 0, its output) and memprof says why it stops, once.
    memprof's start-up wrote its file on the program's thread, whose SIGXFSZ ended the
    program (exit status 153); the writer thread holds every signal. And the file says
    so too: either there is none (start-up could not write it) or it reads as complete,
    with the stop and its reason, its data ending at the last commit that went through
    (the rows saying so went in after the failed transaction was rolled back and the
    -wal file's pages moved into the file; before, from about 40 to 200 KiB, the file
    read as a killed process's, "not closed cleanly", or had no meta rows at all).
    The profile of this program ends at 470-610 KiB: limits of 448 and 512 KiB, near
    where the last commits fail (the rows of the stop then go in on their own), may also
    let the whole profile fit, and then there is no message and no stop in the file."""
    code = "x = [str(i) for i in range(300000)]\nprint('done', len(x))\n"
    for kib in (4, 40, 48, 64, 96, 128, 192, 256, 448, 512):
        def limit(kib=kib):
            resource.setrlimit(resource.RLIMIT_FSIZE, (kib << 10, kib << 10))
        p = subprocess.run(["/usr/bin/python3", "-c", code], env=harness.preload_env({"MEMPROF_OUTPUT": "fsz.db"}),
                           capture_output=True, timeout=120, preexec_fn=limit)
        expect_eq((p.returncode, p.stdout), (0, b"done 300000\n"), "%d KiB: exit status and stdout" % kib)
        if not p.stderr and kib >= 448:
            s = harness.stats("fsz.db")
            if s["status"] != "complete" or s.get("recording_stopped"):
                raise AssertionError("%d KiB: no message, but the file says %r" % (kib, s))
        elif len(lines := p.stderr.decode().splitlines()) != 1 or \
                not lines[0].startswith("memprof: cannot write the profile") or \
                not lines[0].endswith("disk I/O error (File too large); recording stopped"):
            raise AssertionError("%d KiB: stderr %r" % (kib, p.stderr))
        elif os.path.exists("fsz.db"):
            s = harness.stats("fsz.db")
            stop = s.get("recording_stopped") or {}
            if s["status"] != "complete" or "(File too large)" not in stop.get("reason", "") or \
                    not 0 <= stop.get("time_s", -1) <= s["duration_s"] + 0.001:
                raise AssertionError("%d KiB: the file says %r" % (kib, s))
        for f in os.listdir("."):
            if f.startswith("fsz.db"):
                os.unlink(f)


def test_small_signal_stack():
    """A signal handler that allocates on an alternate signal stack of 6 or 8 KiB
    (SIGSTKSZ is 8 KiB) runs as without memprof, with native stacks (a C program's
    default) and without, and every allocation of the handler is in the profile. Until
    session 26 the hook's frame held libunwind's two arrays of frames (4 KiB), which its
    fallback alone uses: a 6 KiB stack overflowed in any mode; and with native stacks a
    stack through the signal frame, which memprof's unwinder leaves to libunwind,
    overflowed an 8 KiB one in libunwind (now not run on an alternate stack under 64 KiB:
    the handler's native frames are not recorded)."""
    for env in ({"MEMPROF_NATIVE": "0"}, {}):
        for size in (6144, 8192):
            what = "%d bytes, %r" % (size, env)
            p, files = run_both([prog("altstack"), str(size)], env=env, expect_rc=0)
            expect_eq(p.stdout, b"handled 1000\n", what + ": stdout")
            s = harness.stats(one_file(files))
            expect_eq(s["status"], "complete", what + ": status")
            if s["allocations"] < 1000 or s["histogram"] == []:
                raise AssertionError("%s: %d allocations recorded" % (what, s["allocations"]))
            for f in files:
                os.unlink(f)


def bucket(stats, lo):
    """(count, bytes) of the stats histogram's bucket starting at lo."""
    for h in stats["histogram"]:
        if h["min"] == lo:
            return h["count"], h["bytes"]
    return 0, 0


def test_handler_allocations():
    """A signal handler that maps and unmaps 128 MiB + 4 KiB (async-signal-safe), or
    mallocs and frees 1,000 bytes, every 100 microseconds while the program allocates
    and frees 40-byte blocks at full speed (tests/e2e/native/sigalloc.c): most signals
    land while the thread is inside memprof, recording one of the loop's blocks. Every
    one of the handler's blocks is in the profile, each freed, nothing dropped, and with
    native stacks each at the handler's line (until session 29 about half of them went
    unrecorded: the hooks let an allocation made inside memprof go by, and a handler's
    is made there). Also with the handler installed by System V's sigset (until session
    30 it bypassed memprof's sigaction, and half of its blocks went unrecorded again)."""
    MAP = (128 << 20) + 4096
    n, us = 3000000, 100
    runs = [(env, how, "sigaction") for env in ({"MEMPROF_NATIVE": "0"}, {}) for how in ("mmap", "malloc")]
    for env, how, installer in runs + [({}, "malloc", "sigset")]:
        lo, size = (1 << 27, MAP) if how == "mmap" else (512, 1000)
        what = "%s %r %s" % (how, env, installer)
        p, files = harness.profile([prog("sigalloc"), str(n), str(us), how, installer], env=env)
        expect_eq((p.returncode, p.stderr), (0, b""), what + ": exit status and stderr")
        hits = int(p.stdout.split()[-1])
        s = harness.stats(one_file(files))
        expect_eq(s["status"], "complete", what + ": status")
        expect_eq(s["dropped_events"], 0, what + ": dropped")
        expect_eq(s["unmatched_frees"], 0, what + ": unmatched frees")
        expect_eq(bucket(s, lo), (hits, hits * size), what + ": the handler's blocks")
        expect_eq(bucket(s, 32), (n, n * 40), what + ": the loop's blocks")
        expect_eq(s["frees"], s["allocations"] - 1, what + ": frees (all but stdout's buffer)")
        if not env:
            # native stacks: each of the handler's blocks at its line, also those
            # made while the thread was inside memprof (the handler's frames taken
            # in the handler)
            line = marks(src("sigalloc.c"), "MAP", "MALLOC")["MAP" if how == "mmap" else "MALLOC"]
            expect_row(harness.report_rows(one_file(files)), src("sigalloc.c"), line, what, allocations=hits,
                       allocated_bytes=hits * size, end_bytes=0)
        if hits < 1000:
            raise AssertionError("%s: only %d signals handled" % (what, hits))
        for f in files:
            os.unlink(f)


def test_handler_query():
    """memprof puts its trampoline in place of the program's handlers: sigaction and
    signal still tell the program of its own handler, flags and mask (SA_SIGINFO or
    not, SA_RESETHAND's reset), as without memprof."""
    p, files = run_both([prog("sigalloc"), "query"], expect_rc=0)
    expect_eq(p.stdout, b"query ok 0, handled 2\n", "stdout")
    # the other names of signal and System V's: sysv_signal, sigset (SIG_HOLD too),
    # bsd_signal, ssignal (until session 30 they showed memprof's stand-in for a fatal
    # signal's default action: "legacy bad 265")
    p, files = run_both([prog("sigalloc"), "legacy"], expect_rc=0)
    expect_eq(p.stdout, b"legacy ok 0, handled 2\n", "stdout")


def test_handler_oneshot_then_signal():
    """A handler installed with SA_RESETHAND runs once; the same signal then ends the
    program by its default action, and the profile is complete (a review found the
    trampoline's SA_SIGINFO left in the reset disposition: memprof then took the default
    action for a handler's and skipped its final write)."""
    p, files = run_both([prog("sigalloc"), "oneshot"], expect_rc=-signal.SIGTERM)
    expect_eq(p.stdout, b"handled 1\n", "stdout")
    db = one_file(files)
    expect_eq(harness.stats(db)["status"], "complete", "status")
    line = marks(src("sigalloc.c"), "ONESHOT")["ONESHOT"]
    expect_row(harness.report_rows(db), src("sigalloc.c"), line, "1,001 x 64", allocations=1001,
               allocated_bytes=1001 * 64, end_bytes=1001 * 64)


def test_handler_left_by_longjmp():
    """A handler that leaves by siglongjmp, most often out of memprof's recording: the
    program's allocations after it are recorded, none dropped (the hooks find the handler
    gone and give the thread its guard back)."""
    for env in ({"MEMPROF_NATIVE": "0"}, {}):
        p, files = run_both([prog("sigalloc"), "longjmp"], env=env, expect_rc=0)
        expect_eq(p.stdout, b"handled 1\n", "stdout")
        s = harness.stats(one_file(files))
        expect_eq(s["dropped_events"], 0, "dropped %r" % env)
        expect_eq(bucket(s, 32)[0] >= 1000000, True, "48-byte blocks recorded %r: %r" % (env, bucket(s, 32)))
        if not env:
            line = marks(src("sigalloc.c"), "AFTER_JUMP")["AFTER_JUMP"]
            expect_row(harness.report_rows(one_file(files)), src("sigalloc.c"), line, "after the jump",
                       allocations=1000000, allocated_bytes=48000000, end_bytes=0)
        for f in files:
            os.unlink(f)


if __name__ == "__main__":
    harness.run(globals())
