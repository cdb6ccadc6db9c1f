"""memprof's own unwinder (preload/unwind.h) in native mode. With MEMPROF_CHECK_UNWIND=1
every stack is unwound by it and by libunwind and the two compared: on the test programs
(built without optimization: every frame's CFA is the frame pointer, rbp) and the
sqlite3 shell (optimized: rsp-based frames), on several threads, across dlopen and
dlclose, through C++ and a recursion deeper than its chains (libunwind's then), it must
answer and never differ. Then a whole profile (of `basic`, whose every run allocates the
same) must be the same whichever unwinder answered."""
import os
import shutil

import harness
from harness import expect_eq
from native_common import prog

SQL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "native_sqlite.sql")


def checked(argv, what):
    """Runs argv with the check on; returns (stacks, answered, unwound) and the profile
    file."""
    p, files = harness.profile(argv, env={"MEMPROF_CHECK_UNWIND": "1"})
    if p.returncode != 0 or len(files) != 1:
        raise AssertionError("%s: exit %d, files %s, stderr %s" % (what, p.returncode, files, p.stderr[-2000:]))
    stacks, answered, unwound = harness.unwind_check(p.stderr, what)
    return stacks, answered, unwound, files[0]


def test_programs():
    lib = lambda n: harness.testbin(os.path.join("native", "libdllib_%s.so" % n))
    runs = [([prog("basic")], "basic", 1.0), ([prog("threads"), "lines"], "threads lines", 1.0),
            ([prog("threads"), "stress", "20000", "4"], "threads stress", 1.0),
            ([prog("dl"), lib("a"), lib("b")], "dl", 0.5), ([prog("deep")], "deep", 0.0)]
    if os.path.exists(prog("cxx")):
        runs.append(([prog("cxx")], "cxx", 1.0))
    for argv, what, share in runs:
        stacks, answered, _, _ = checked(argv, what)
        expect_eq(stacks > 0, True, "%s: stacks checked" % what)
        # all of them where no frame is beyond it; after dl's dlclose, libunwind unwinds
        expect_eq(answered >= stacks * share, True, "%s: answered %d of %d (at least %d%%)" % (
            what, answered, stacks, share * 100))


def test_rbp_of_its_own():
    """Optimized code keeping a value of its own in rbp (rbpreg: a different one saved by
    the allocating function on each of 20,000 calls, from one line): every stack answered
    and none differing, and nearly all from the chain cache, which must not take the
    saved word, read by no CFA, for part of the chain (each stack missed the cache)."""
    stacks, answered, unwound, db = checked([prog("rbpreg"), "20000"], "rbpreg")
    expect_eq(answered == stacks and stacks >= 20000, True, "rbpreg: answered %d of %d" % (answered, stacks))
    expect_eq(unwound < stacks // 100, True, "rbpreg: chains unwound %d of %d stacks (under 1%%)" % (
        unwound, stacks))
    line = harness.line_of(os.path.join(os.path.dirname(os.path.abspath(__file__)), "rbpreg.c"),
                           "the allocation line")
    row = harness.row_at(harness.report_rows(db), "rbpreg.c", line)
    expect_eq((row["allocations"], row["allocated_bytes"]), (20000, 20000 * 48), "rbpreg: the allocation line")


def test_registered_frames():
    """A program that registers unwind information of its own and then unwinds with
    libgcc (a JIT and a C++ throw): memprof must not call into libgcc's FDE look-up from
    the allocation libgcc makes under its lock (the program hung)."""
    p, files = harness.profile([prog("regframe")], timeout=30)
    expect_eq((p.returncode, p.stdout, len(files)), (0, b"unwound several frames\n", 1), "regframe")


def folded(db):
    return sorted(harness.analyze("flamegraph", "--format=folded", "--metric=allocated", db).splitlines())


def test_same_profile():
    _, answered, _, checked_db = checked([prog("basic")], "basic")
    p, files = harness.profile([prog("basic")])
    expect_eq((p.returncode, len(files)), (0, 1), "basic without the check")
    own, theirs = folded(files[0]), folded(checked_db)
    expect_eq(len(own) > 10, True, "basic: stacks in the profile (%d)" % len(own))
    expect_eq(own, theirs, "basic: the profile, memprof's unwinder against libunwind's")


def test_sqlite3_shell():
    sqlite3 = shutil.which("sqlite3")
    if not sqlite3:
        raise AssertionError("the sqlite3 shell is not installed (scripts/setup installs it)")
    argv = [sqlite3, ":memory:", "-init", SQL, ".quit"]
    stacks, answered, _, db = checked(argv, "sqlite3")
    expect_eq(stacks > 500000 and answered == stacks, True, "sqlite3: answered %d of %d" % (answered, stacks))


if __name__ == "__main__":
    harness.run(globals())
