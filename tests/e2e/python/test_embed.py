"""A C program that embeds Python and initializes it twice (tests/e2e/python/embed.c,
linked with Debian's libpython3.11). "Live at end" is the end of the last interpreter,
not of the first: round 1's 5,000,000 bytes (freed by the first finalization) are not
live at the end, round 2's 3,000,000 are; with round 2 killed by SIGTERM before it
finalizes, the end is the kill, and round 2's block is live there. Before, the end was
the first finalization (round 1's block live at the end, round 2's not)."""
import os
import signal

import harness
from pycommon import one

BA = 57  # a bytearray's header and NUL (3.11)


def check(mode, rc):
    prog = harness.testbin(os.path.join("python", "embed"))
    p, files = harness.profile([prog, mode], check_rc=rc)
    db = one(files, mode)
    rows = harness.report_rows(db)
    first = harness.row_at(rows, "round1", 1)
    second = harness.row_at(rows, "round2", 1)
    got = (first["allocated_bytes"], first["end_bytes"], second["allocated_bytes"], second["end_bytes"])
    n1, n2 = 5000000 + BA, 3000000 + BA
    # (a few small objects of the compiled code at the same lines: names, constants)
    if not (n1 <= got[0] <= n1 + 1024 and got[1] <= 1024 and n2 <= got[2] <= n2 + 1024 and n2 <= got[3] <= n2 + 1024):
        raise AssertionError("%s: round 1 allocated %d, live at end %d; round 2 allocated %d, live at end %d" % (
            (mode,) + got))
    return db


def test_initialized_twice():
    db = check("twice", 0)
    st = harness.stats(db)
    harness.expect_eq(st["end_marker"], True, "the second finalization's end")
    if st["leaked_bytes"] < 2000000:
        raise AssertionError("the C leak after both rounds: leaked %d" % st["leaked_bytes"])


def test_killed_in_second_round():
    check("killed", -signal.SIGTERM)


def test_options_before_initialize():
    """Options set before Py_Initialize (100 of each kind): CPython puts its default allocator back for a
    moment for each and allocates under it. memprof, which wraps an allocator again when
    it sees one replaced during start-up, must reuse its wrapping of the default one:
    it took a new one each time, and after 8 said "Python's allocators were replaced 8
    times; not wrapping them again" on the program's stderr."""
    prog = harness.testbin(os.path.join("python", "embed"))
    plain = harness.run_plain([prog, "options"])
    p, files = harness.profile([prog, "options"], check_rc=0)
    harness.expect_eq((p.returncode, p.stdout, p.stderr), (plain.returncode, plain.stdout, plain.stderr),
                      "status and output as without memprof")
    harness.expect_eq(harness.stats(one(files, "options"))["status"], "complete", "status")


def test_plugin_loaded_locally():
    """A native program loads a plugin linked with libpython with RTLD_LOCAL: the
    plugin's call of Py_Initialize reaches memprof's wrapper (in the global scope), which
    must find libpython in the plugin's own scope (it aborted: "no Python library
    defines it")."""
    host = harness.testbin(os.path.join("python", "embedhost"))
    plugin = harness.testbin(os.path.join("python", "libembedplugin.so"))
    p, files = harness.profile([host, plugin], check_rc=0)
    harness.expect_eq((p.stdout, p.stderr), (b"py ok 1000\ndone 0\n", b""), "output")
    harness.expect_eq(harness.stats(one(files, "host"))["status"], "complete", "status")


if __name__ == "__main__":
    harness.run(globals())
