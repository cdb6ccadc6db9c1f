"""Python versions the library has no frame walk for (pyenv has several here: 2.7, 3.6 to
3.8; and any interpreter told by MEMPROF_TEST_PYTHON_VERSION that it is another): the
preload says it does not support them in exactly one stderr line, naming the versions it
does support, and runs the program untouched: same stdout, same stderr apart from that
line, same exit status, and no profile file. The supported ones are test_pyversions'."""
import glob
import os
import re

import harness
from pycommon import prog, pythons

PROG = prog("anyver.py")


def supported():
    """The versions the library was built with a frame walk for (meson.build)."""
    return os.environ.get("MEMPROF_TEST_PY_VERSIONS", "3.11").split()


def other_pythons():
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    out = []
    for exe in sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python3.*"))):
        m = re.fullmatch(r"python3\.(\d+)", os.path.basename(exe))
        if m and "3." + m.group(1) not in supported() and int(m.group(1)) >= 6 and os.access(exe, os.X_OK):
            out.append((exe, "3.%s" % m.group(1)))
    return out


def check_refused(exe, ver, env=None):
    w = "[%s%s]" % (exe, " " + str(env) if env else "")
    plain = harness.run_plain([exe, PROG])
    harness.expect_eq(plain.returncode, 5, w + " plain exit status")
    p, files = harness.profile([exe, PROG], env=env)
    harness.expect_eq(p.returncode, 5, w + " exit status")
    harness.expect_eq(p.stdout, plain.stdout, w + " stdout")
    lines = p.stderr.decode().splitlines(True)
    ours = [l for l in lines if l.startswith("memprof")]
    if len(ours) != 1 or ver not in ours[0] or "not supported" not in ours[0] or \
            "supports CPython %s)" % ", ".join(supported()) not in ours[0]:
        raise AssertionError("%s want one 'not supported' line for %s, stderr: %r" % (w, ver, p.stderr))
    harness.expect_eq("".join(l for l in lines if l not in ours).encode(), plain.stderr, w + " stderr")
    harness.expect_eq(files, [], w + " profile files")


def test_unsupported_versions_refused():
    pys = other_pythons()
    if not pys:
        raise harness.Skip("no Python this build does not support on this machine")
    for exe, ver in pys:
        check_refused(exe, ver)


def test_pretended_version_refused():
    """The same refusal on this machine's 3.11 interpreters, pretending to be 3.14 (and
    3.1, which a comparison of the version's first characters would take for 3.11), or a
    supported version other than its own: another version's walk must never read a 3.11
    interpreter's frames."""
    for py in pythons():
        check_refused(py, "3.14.0", env={"MEMPROF_TEST_PYTHON_VERSION": "3.14.0 (pretend)"})
        check_refused(py, "3.1.5", env={"MEMPROF_TEST_PYTHON_VERSION": "3.1.5 (pretend)"})
        for v in supported():
            if v != "3.11":
                check_refused(py, v + ".1", env={"MEMPROF_TEST_PYTHON_VERSION": v + ".1 (pretend)"})


if __name__ == "__main__":
    harness.run(globals())
