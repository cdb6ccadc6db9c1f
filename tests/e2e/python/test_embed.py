"""A C program that embeds Python and initializes it twice (tests/e2e/python/embed.c,
linked with Debian's libpython3.11, and built again with each newer version's libpython
the build found: pyenv's 3.9, 3.10, 3.12 and 3.13 here, MEMPROF_TEST_EMBED_VERSIONS). "Live at end" is the end of the last interpreter,
not of the first: round 1's 5,000,000 bytes (freed by the first finalization) are not
live at the end, round 2's 3,000,000 are; with round 2 killed by SIGTERM before it
finalizes, the end is the kill, and round 2's block is live there. Before, the end was
the first finalization (round 1's block live at the end, round 2's not)."""
import os
import signal

import harness
from pycommon import one

BA = 57  # a bytearray's header and NUL (3.11)


def tags():
    """"" for 3.11's programs, then "312", "313" for those built with newer versions."""
    return [""] + [v.replace(".", "") for v in os.environ.get("MEMPROF_TEST_EMBED_VERSIONS", "").split()]


def check_one(tag, mode, rc):
    prog = harness.testbin(os.path.join("python", "embed" + tag))
    mode_w = "%s [embed%s]" % (mode, tag)
    p, files = harness.profile([prog, mode], check_rc=rc)
    db = one(files, mode_w)
    rows = harness.report_rows(db)
    first = harness.row_at(rows, "round1", 1)
    second = harness.row_at(rows, "round2", 1)
    got = (first["allocated_bytes"], first["end_bytes"], second["allocated_bytes"], second["end_bytes"])
    n1, n2 = 5000000 + BA, 3000000 + BA
    # (a few small objects of the compiled code at the same lines: names, constants)
    if not (n1 <= got[0] <= n1 + 1024 and got[1] <= 1024 and n2 <= got[2] <= n2 + 1024 and n2 <= got[3] <= n2 + 1024):
        raise AssertionError("%s: round 1 allocated %d, live at end %d; round 2 allocated %d, live at end %d" % (
            (mode_w,) + got))
    return db


def check(mode, rc):
    return [check_one(tag, mode, rc) for tag in tags()]


def test_initialized_twice():
    for db in check("twice", 0):
        st = harness.stats(db)
        harness.expect_eq(st["end_marker"], True, "%s: the second finalization's end" % db)
        if st["leaked_bytes"] < 2000000:
            raise AssertionError("%s: the C leak after both rounds: leaked %d" % (db, st["leaked_bytes"]))
        # 3.12 and later put the default arena allocator back for the second interpreter:
        # wrapped again, its arenas are not the program's mappings
        harness.expect_eq(st["allocators"].get("mmap"), None, "%s: mappings recorded" % db)


def test_killed_in_second_round():
    check("killed", -signal.SIGTERM)


def test_options_before_initialize():
    """Options set before Py_Initialize (100 of each kind): CPython puts its default allocator back for a
    moment for each and allocates under it. memprof, which wraps an allocator again when
    it sees one replaced during start-up, must reuse its wrapping of the default one:
    it took a new one each time, and after 8 said "Python's allocators were replaced 8
    times; not wrapping them again" on the program's stderr."""
    for tag in tags():
        w = "[embed%s]" % tag
        prog = harness.testbin(os.path.join("python", "embed" + tag))
        plain = harness.run_plain([prog, "options"])
        p, files = harness.profile([prog, "options"], check_rc=0)
        harness.expect_eq((p.returncode, p.stdout, p.stderr), (plain.returncode, plain.stdout, plain.stderr),
                          w + " status and output as without memprof")
        harness.expect_eq(harness.stats(one(files, "options " + w))["status"], "complete", w + " status")


def test_plugin_loaded_locally():
    """A native program loads a plugin linked with libpython with RTLD_LOCAL: the
    plugin's call of Py_Initialize reaches memprof's wrapper (in the global scope), which
    must find libpython in the plugin's own scope (it aborted: "no Python library
    defines it")."""
    host = harness.testbin(os.path.join("python", "embedhost"))
    for tag in tags():
        w = "[embedplugin%s]" % tag
        plugin = harness.testbin(os.path.join("python", "libembedplugin%s.so" % tag))
        p, files = harness.profile([host, plugin], check_rc=0)
        harness.expect_eq((p.stdout, p.stderr), (b"py ok 1000\ndone 0\n", b""), w + " output")
        harness.expect_eq(harness.stats(one(files, "host " + w))["status"], "complete", w + " status")


if __name__ == "__main__":
    harness.run(globals())
