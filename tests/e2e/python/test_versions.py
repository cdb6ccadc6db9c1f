"""Python versions other than 3.11 (pyenv has several here): the preload says it does not
support them in exactly one stderr line, attributes nothing to Python lines, and leaves
the program's behaviour alone (same stdout, same stderr apart from that line, same exit
status); the process still gets its file with native capture."""
import glob
import os
import re

import harness
from pycommon import prog

PROG = prog("anyver.py")


def other_pythons():
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    out = []
    for exe in sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python3.*"))):
        m = re.fullmatch(r"python3\.(\d+)", os.path.basename(exe))
        if m and int(m.group(1)) != 11 and int(m.group(1)) >= 6 and os.access(exe, os.X_OK):
            out.append((exe, "3.%s" % m.group(1)))
    return out


def test_unsupported_versions_refused():
    pys = other_pythons()
    if not pys:
        raise harness.Skip("no Python other than 3.11 on this machine")
    for exe, ver in pys:
        w = "[%s]" % exe
        plain = harness.run_plain([exe, PROG])
        harness.expect_eq(plain.returncode, 5, w + " plain exit status")
        p, files = harness.profile([exe, PROG])
        harness.expect_eq(p.returncode, 5, w + " exit status")
        harness.expect_eq(p.stdout, plain.stdout, w + " stdout")
        lines = p.stderr.decode().splitlines(True)
        ours = [l for l in lines if l.startswith("memprof")]
        if len(ours) != 1 or ver not in ours[0] or "not supported" not in ours[0]:
            raise AssertionError("%s want one 'not supported' line for %s, stderr: %r" % (w, ver, p.stderr))
        harness.expect_eq("".join(l for l in lines if l not in ours).encode(), plain.stderr, w + " stderr")
        if len(files) != 1:
            raise AssertionError("%s files: %s" % (w, files))
        st = harness.stats(files[0])
        harness.expect_eq(st["status"], "complete", w + " status")
        rows = harness.report_rows(files[0])
        py_rows = [r for r in rows if r["file"].endswith(".py") or r["file"].startswith("<frozen")]
        if py_rows:
            raise AssertionError("%s Python lines reported for an unsupported version: %s" % (w, py_rows[:3]))
        # Its memory is still seen, natively (the 8 MiB of blocks at least).
        if st["peak_heap_bytes"] < 8 << 20:
            raise AssertionError("%s peak %d" % (w, st["peak_heap_bytes"]))


if __name__ == "__main__":
    harness.run(globals())
