"""Python programs ended by signals (progs/signals.py), on both interpreters: the exit
status (the signal) and the output are those of a plain run, a Python SIGTERM handler
still runs, and the file is complete with the block allocated before the signal."""
import harness
from pycommon import line_sum, one, prog, pythons, tag

PROG = prog("signals.py")
BLOCK = 7000001 + 57


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


if __name__ == "__main__":
    harness.run(globals())
