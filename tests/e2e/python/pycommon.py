"""Shared helpers of the Python end-to-end tests (tests/e2e/python)."""
import os
import subprocess

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
PROGS = os.path.join(HERE, "progs")


def prog(name):
    return os.path.join(PROGS, name)


def cext_lib():
    """The small C library built by this folder's meson.build (cext.c)."""
    p = os.path.join(harness.TESTBIN, "python", "libmpcext.so")
    if not os.path.exists(p):
        raise AssertionError("%s not built" % p)
    return p


def pythons():
    ps = harness.pythons()
    if len(ps) < 2:
        # Both interpreters are part of the contract on this machine: a missing one is
        # a broken set-up, not a reason to test less.
        raise AssertionError("expected two interpreters (Debian's and pyenv's), got %s" % ps)
    return ps


_versions = {}


def version(py):
    """The interpreter's (major, minor)."""
    if py not in _versions:
        out = subprocess.run([py, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, check=True).stdout.split()
        _versions[py] = tuple(int(x) for x in out)
    return _versions[py]


def funcname(py, qualname):
    """The name memprof shows for a function of that qualified name: 3.9's and 3.10's code
    objects have their function's bare name only (co_name; co_qualname is 3.11's)."""
    return qualname if version(py) >= (3, 11) else qualname.rsplit(".", 1)[-1]


def listcomp(py, outer):
    """The function a list comprehension in function `outer` runs as: its own frame until
    3.11, the function's own from 3.12 on (PEP 709)."""
    return outer if version(py) >= (3, 12) else funcname(py, outer + ".<locals>.<listcomp>")


def line_sum(rows, path, line, field):
    """Sum of a field over every row at path:line (one row per function at a line:
    a comprehension and its enclosing function can share a line)."""
    return sum(r[field] for r in harness.rows_at(rows, path, line))


def line_rows(rows, path, line):
    m = harness.rows_at(rows, path, line)
    if not m:
        raise AssertionError("no row at %s:%d; rows of that file: %s" % (
            path, line, sorted((r["line"], r["function"]) for r in rows if r["file"].endswith(path))))
    return m


def one(files, what=""):
    if len(files) != 1:
        raise AssertionError("%s: expected exactly one profile file, got %s" % (what, files))
    return files[0]


def tag(py):
    return "[%s]" % py
