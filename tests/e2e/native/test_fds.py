"""A program that closes every descriptor (a loop of close, close_range, closefrom) and
then opens files of its own: its files hold only what it wrote, it gets the descriptor
numbers it gets without memprof, and the profile is complete (memprof's descriptors,
kept high and kept open, fds.h). Before, memprof's file sat on fds 3-8: closed by the
program, it went on writing into the program's new files (a file of the program's became
a SQLite database). Also a shell's `exec 6>file`."""
import os
import subprocess

import harness
from harness import expect_eq
from native_common import expect_row, marks, one_file, prog, run_both, src

SRC = src("fds.c")


def test_close_everything():
    """`raw` closes them with the system call itself (syscall(SYS_close_range, ...)),
    which memprof does not see: its descriptors are opened again on their numbers (the
    profile's connection then opened again too, for its locks). Before, the writer spun
    in SQLite's lock retries on the closed descriptors: the program's exit waited ~50 s
    for the final flush, and the profile held nothing."""
    L = marks(SRC, "BEFORE", "AFTER")
    for mode in ("loop", "range", "from", "raw"):
        for f in os.listdir("."):
            os.unlink(f)
        # (memprof opens its file again, closed behind its back, at the lowest free number
        # for the moment it takes to move it up, as Linux opens nowhere else: the raw
        # close's first open may meet that moment, in about 1 run of 30 on a loaded
        # machine, and get 4; never a number memprof keeps)
        raced = (b"first fd 4, 0 open below it\n", b"first fd 5, 0 open below it\n") if mode == "raw" else ()
        p, files = run_both([prog("fds"), mode], expect_rc=0, stdout_also=raced)
        if p.stdout not in raced:
            expect_eq(p.stdout, b"first fd 3, 0 open below it\n", mode + ": stdout (the program's first file on fd 3)")
        for i in range(12):
            with open("f%02d.txt" % i, "rb") as f:
                expect_eq(f.read(), b"program data\n", "%s: f%02d.txt holds the program's line only" % (mode, i))
        db = one_file(files)
        rows = harness.report_rows(db)
        expect_row(rows, SRC, L["BEFORE"], mode + ": before", allocations=10, allocated_bytes=10000)
        expect_row(rows, SRC, L["AFTER"], mode + ": after", allocations=10, allocated_bytes=20000)
        s = harness.stats(db)
        expect_eq((s["status"], s["dropped_events"]), ("complete", 0), mode + ": (status, dropped)")


def test_raw_close_while_recording():
    """A program that closes every descriptor from 3 on with the system call itself 50
    times while it allocates (100,000 blocks at one line, at full speed: the closes land
    anywhere in the writer's work, its reopening included): every allocation is in the
    profile, nothing dropped, and the file is complete."""
    L = marks(SRC, "LOOP")
    for run in range(3):
        for f in os.listdir("."):
            os.unlink(f)
        p, files = run_both([prog("fds"), "rawloop"], expect_rc=0, timeout=60)
        expect_eq(p.stdout, b"rounds 50\n", "stdout")
        db = one_file(files)
        expect_row(harness.report_rows(db), SRC, L["LOOP"], "run %d: the loop" % run, allocations=100000,
                   allocated_bytes=10000000)
        s = harness.stats(db)
        expect_eq((s["status"], s["dropped_events"], s["recording_stopped"]), ("complete", 0, None),
                  "run %d: (status, dropped, stop)" % run)


def test_raw_dup3_onto_every_number():
    """A program that puts a file of its own on every number it may use (a limit of 128
    descriptors: memprof's are at 96 and up) with the system call dup3 itself, which
    replaces memprof's without a moment between (a close then an open would leave a
    number free for memprof to open its file again on, in some runs and not others):
    memprof cannot open its file again there and stops recording, in
    one line on stderr; the program's file stays empty (nothing of memprof's written to
    it), its files are its own (a dup2 onto one replaces that one alone, close closes
    each: the numbers memprof lost are not kept from the program), its run is as without
    memprof, and the profile holds what was committed before (it reads as not closed
    cleanly: its connection is left as it was)."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
    L = marks(SRC, "BEFORE")
    plain = subprocess.run([prog("fds"), "rawtake"], capture_output=True, timeout=60, preexec_fn=limit)
    expect_eq((plain.returncode, plain.stderr), (0, b""), "plain run")
    if not plain.stdout.startswith(b"untouched\nopen after dup2 ") or not plain.stdout.endswith(b", after close 0\n"):
        raise AssertionError("plain stdout %r" % plain.stdout)
    os.unlink("t.txt")
    p = subprocess.run([prog("fds"), "rawtake"], env=harness.preload_env({"MEMPROF_OUTPUT": "take.db"}),
                       capture_output=True, timeout=60, preexec_fn=limit)
    expect_eq((p.returncode, p.stdout), (0, plain.stdout), "exit status and stdout (its files opened, kept, closed)")
    lines = p.stderr.decode().splitlines()
    if len(lines) != 1 or "took its number or the file: it cannot be opened again; recording stopped" not in lines[0]:
        raise AssertionError("stderr: %r" % p.stderr)
    expect_row(harness.report_rows("take.db"), SRC, L["BEFORE"], "before the close", allocations=10,
               allocated_bytes=10000)
    expect_eq(harness.stats("take.db")["status"], "running", "status")


def test_dup2_onto_memprofs_descriptors():
    """A program that puts a file of its own on memprof's descriptor numbers (dup2 onto
    every number from 900 to 1023): its file holds only what it wrote (it held memprof's
    WAL), its run is as without memprof but for one line on stderr, and the profile is
    complete up to there, the stop and its reason in it."""
    L = marks(SRC, "BEFORE")
    plain = harness.run_plain([prog("fds"), "dup2"])
    expect_eq((plain.returncode, open("d.txt", "rb").read()), (0, b"program data\n"), "plain run")
    os.unlink("d.txt")
    p, files = harness.profile([prog("fds"), "dup2"])
    expect_eq((p.returncode, p.stdout), (plain.returncode, plain.stdout), "exit status and stdout")
    expect_eq(open("d.txt", "rb").read(), b"program data\n", "the program's file")
    lines = p.stderr.decode().splitlines()
    if len(lines) != 1 or "one of memprof's (dup2); recording stopped" not in lines[0]:
        raise AssertionError("stderr: %r" % p.stderr)
    db = one_file(files)
    expect_row(harness.report_rows(db), SRC, L["BEFORE"], "before the dup2", allocations=10, allocated_bytes=10000)
    s = harness.stats(db)
    expect_eq(s["status"], "complete", "status")
    if not s["recording_stopped"] or "(dup2)" not in s["recording_stopped"]["reason"]:
        raise AssertionError("recording_stopped: %r" % s["recording_stopped"])


def test_shell_exec_redirect():
    """bash's `exec 6>out6.txt`: the file holds what the shell wrote (it held the WAL)."""
    script = "exec 6>out6.txt; echo hi >&6; for i in $(seq 2000); do x=$x$i; done"
    p, files = harness.profile(["bash", "-c", script], check_rc=0)
    with open("out6.txt", "rb") as f:
        expect_eq(f.read(), b"hi\n", "out6.txt")
    expect_eq(harness.stats(one_file(files))["status"], "complete", "status")


DAEMON = """import os, signal, sys, time
print("starting", file=sys.stderr, flush=True)
if os.fork() > 0:
    sys.exit(0)
os.setsid()
print(os.getpid(), flush=True)
os.closerange(0, 4096)
fd = os.open("/dev/null", os.O_RDWR)
os.dup(fd)
os.dup(fd)
time.sleep(30)
"""


def test_daemon_does_not_hold_the_callers_pipe():
    """A daemon (fork, setsid, close every descriptor) lets its caller's pipes go: the
    caller reading its output sees the end at once. memprof's copy of stderr, kept open
    when the program closed it, held the caller's pipe until the daemon ended."""
    with open("daemon.py", "w") as f:
        f.write(DAEMON)
    py = "/usr/bin/python3"
    p, files = harness.profile([py, "daemon.py"], check_rc=0, timeout=15)
    pid = int(p.stdout.split()[0])
    try:
        expect_eq(p.stderr, b"starting\n", "stderr")
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    harness.run(globals())
