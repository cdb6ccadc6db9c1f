"""A C extension's own malloc (numpy's array data) is attributed to the Python line that
caused it, and with MEMPROF_NATIVE=1 its stack shows numpy's native frames under that
Python line. Runs with the interpreters that have numpy (Debian's python3 with
python3-numpy); skipped where none has it."""
import json
import os
import subprocess

import harness
from harness import expect_eq, line_of, profile, report_rows, rows_at
from pycommon import prog, pythons

PROG = prog("numpyuse.py")
DATA = 8_000_000


def with_numpy():
    return [py for py in pythons()
            if subprocess.run([py, "-c", "import numpy"], capture_output=True).returncode == 0]


def test_numpy_array_data():
    pys = with_numpy()
    if not pys:
        raise harness.Skip("no interpreter here has numpy")
    line = line_of(PROG, "# L:ones")
    for py in pys:
        plain = harness.run_plain([py, PROG])
        for native in ("0", "1"):
            p, files = profile([py, PROG], env={"MEMPROF_NATIVE": native}, check_rc=0)
            expect_eq(p.stdout, plain.stdout, "%s stdout" % py)
            expect_eq(len(files), 1, "profile files")
            # numpy's own Python code (numeric.py: ones -> empty) is the innermost frame;
            # --focus charges the data to the program's line
            rows = rows_at(report_rows(files[0], "--focus=" + os.path.dirname(PROG)), "numpyuse.py", line)
            alloc = sum(r["allocated_bytes"] for r in rows)
            end = sum(r["end_bytes"] for r in rows)
            if not (DATA <= alloc <= DATA + 64 * 1024 and DATA <= end <= DATA + 64 * 1024):
                raise AssertionError("%s NATIVE=%s line %d: allocated %d, at end %d" % (py, native, line, alloc, end))
            if native == "1":
                doc = json.loads(harness.analyze("leaks", "--format=json", "--limit=0", files[0]))
                big = [s for s in doc["stacks"] if s["bytes"] == DATA and s["blocks"] == 1]
                expect_eq(len(big), 1, "%s stacks holding the array data" % py)
                fr = big[0]["frames"]
                mods = [f["module"] or "" for f in fr if not f["python"]]
                if not any("_multiarray_umath" in m for m in mods):
                    raise AssertionError("%s no numpy native frame: %r" % (py, mods))
                pyf = [f for f in fr if f["python"]]
                if not any(f["file"] == PROG and f["line"] == line for f in pyf):
                    raise AssertionError("%s the Python line is not in the stack: %r" % (py, pyf))


if __name__ == "__main__":
    harness.run(globals())
