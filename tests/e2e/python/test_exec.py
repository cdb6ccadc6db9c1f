"""exec between Python programs: a Python program that execs another keeps its profile
(complete, as one file: no -wal/-shm left beside it), and the exec'd program writes its
own file next to it (memprof.<pid>.1.db), each with its own line's bytes."""
import os

import harness
from harness import expect_eq, line_of, report_rows, rows_at, stats
from pycommon import prog, pythons

PROG = prog("execs.py")


def test_python_exec_python_keeps_both():
    first, second = line_of(PROG, "# L:first"), line_of(PROG, "# L:second")
    for py in pythons():
        plain = harness.run_plain([py, PROG, "first"])
        p, files = harness.profile([py, PROG, "first"], check_rc=0)
        expect_eq(p.stdout, plain.stdout, "%s stdout" % py)
        expect_eq(len(files), 2, "%s profile files %r" % (py, files))
        left = [f for f in os.listdir(".") if f.endswith("-wal") or f.endswith("-shm")]
        expect_eq(left, [], "%s files beside the profiles" % py)
        by_line = {}
        for f in files:
            rows = report_rows(f)
            for line in (first, second):
                if rows_at(rows, "execs.py", line):
                    by_line.setdefault(line, []).append((f, rows_at(rows, "execs.py", line)[0]))
            expect_eq(stats(f)["status"], "complete", "%s status of %s" % (py, f))
        expect_eq(sorted(by_line), [first, second], "%s lines found" % py)
        for line, size in ((first, 5_000_000), (second, 7_000_000)):
            expect_eq(len(by_line[line]), 1, "%s files with line %d" % (py, line))
            f, row = by_line[line][0]
            if not (size <= row["allocated_bytes"] <= size + 4096):
                raise AssertionError("%s line %d: %d bytes" % (py, line, row["allocated_bytes"]))
        # the first image's file has the root name, the exec'd image the next one
        expect_eq(os.path.basename(by_line[first][0][0]).count("."), 2, "%s first image's file" % py)
        expect_eq(os.path.basename(by_line[second][0][0]).endswith(".1.db"), True, "%s exec'd image's file" % py)
        for f in files:
            os.unlink(f)


if __name__ == "__main__":
    harness.run(globals())
