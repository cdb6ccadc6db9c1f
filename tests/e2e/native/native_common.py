"""Helpers shared by the native end-to-end tests (on top of harness.py)."""
import os

import harness
from harness import expect_eq

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1024 * 1024


def src(name):
    return os.path.join(HERE, name)


def prog(name):
    return harness.testbin(os.path.join("native", name))


def marks(source, *markers):
    """{marker: line} for markers written as `@MARKER` in the source."""
    return {m: harness.line_of(source, "@" + m + " ") if _has(source, "@" + m + " ") else harness.line_of(source, "@" + m)
            for m in markers}


def _has(source, text):
    with open(source) as f:
        return text in f.read()


def run_both(argv, env=None, expect_rc=None, timeout=300, input=None, stdout_also=()):
    """Runs argv plainly and under the preload: same stdout (or, under memprof, one of
    stdout_also), stderr and exit status. Returns (profiled CompletedProcess, new profile
    files)."""
    plain = harness.run_plain(argv, env=env, timeout=timeout, input=input)
    p, files = harness.profile(argv, env=env, timeout=timeout, input=input)
    if expect_rc is not None:
        expect_eq(plain.returncode, expect_rc, "plain exit status of %s" % argv)
    expect_eq(p.returncode, plain.returncode, "exit status under memprof (stderr %r)" % p.stderr[-1000:])
    if p.stdout not in stdout_also:
        expect_eq(p.stdout, plain.stdout, "stdout under memprof")
    expect_eq(p.stderr, plain.stderr, "stderr under memprof")
    return p, files


def one_file(files):
    if len(files) != 1:
        raise AssertionError("expected one profile file, got %r" % (files,))
    return files[0]


def expect_row(rows, source, line, what, **want):
    """The single row at source:line has exactly the wanted fields."""
    r = harness.row_at(rows, "/" + os.path.basename(source), line)
    for k, v in want.items():
        expect_eq(r[k], v, "%s (%s:%d) %s" % (what, os.path.basename(source), line, k))
    return r


def expect_no_row(rows, source, line, what):
    m = harness.rows_at(rows, "/" + os.path.basename(source), line)
    if m:
        raise AssertionError("%s: expected no row at %s:%d, got %r" % (what, os.path.basename(source), line, m))


def meta(db):
    """The file's meta table as a dict (read with Python's sqlite3, read-only)."""
    import sqlite3
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return dict(c.execute("SELECT key, value FROM meta"))
    finally:
        c.close()


def profile_files(cwd="."):
    return sorted(os.path.join(cwd, f) for f in os.listdir(cwd) if f.endswith(".db"))

