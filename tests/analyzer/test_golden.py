#!/usr/bin/python3
"""Golden-file tests: the analyzer's outputs on one real capture, compared line by line.

usage: test_golden.py MEMPROF            compare (run with golden/ as working directory)
       test_golden.py --regen MEMPROF    rewrite golden/expected/ from golden/capture.db.xz

golden/capture.db.xz is a real capture of golden/golden.py (`python3 -I -S golden.py`
under the preload library, compacted and xz-compressed to stay small); golden/regen makes
it again and rewrites the expected outputs, e.g. after a schema or format change:

    tests/analyzer/golden/regen                  new capture, new expected outputs
    tests/analyzer/golden/regen --outputs-only   same capture, new expected outputs

then review `git diff tests/analyzer/golden` before committing.

The outputs may not depend on the machine: everything they show comes from the capture
except source lines, which are read from disk. golden.py's lines resolve from this
directory (the capture's working directory, or ours: the test runs here); source lines
of other files (the standard library) are dropped from the outputs before comparing.
Folded flame graph stacks are kept where they pass through golden.py, and summed up
otherwise (start-up has thousands)."""
import difflib
import lzma
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
EXPECTED = os.path.join(GOLDEN, "expected")
CAPTURE = os.path.join(GOLDEN, "capture.db.xz")
MAX_CAPTURE_BYTES = 100 * 1024

# name of the expected file -> memprof arguments (the capture is appended)
COMMANDS = [
    ("report.txt", ["report"]),
    ("report.csv", ["report", "--format=csv", "--limit=40"]),
    ("report-by-function.txt", ["report", "--by=function", "--limit=15"]),
    ("stats.txt", ["stats"]),
    ("peak.txt", ["peak", "--limit=8"]),
    ("leaks.txt", ["leaks", "--limit=8"]),
    ("lines.txt", ["lines", "golden.py"]),
    ("lines-build.txt", ["lines", "golden.py:build"]),
    ("temporary.txt", ["temporary", "--limit=15"]),
    ("timeseries.csv", ["timeseries"]),
    ("flamegraph.folded", ["flamegraph", "--format=folded"]),
    ("flamegraph-allocated.folded", ["flamegraph", "--format=folded", "--metric=allocated"]),
]

REGEN_HINT = ("if the change is intended: tests/analyzer/golden/regen --outputs-only (a new schema "
              "version needs a new capture: tests/analyzer/golden/regen), then review git diff "
              "tests/analyzer/golden")
SOURCE_INDENT = " " * 30  # text outputs print a row's source line indented this far or more


def machine_independent(text):
    """Drops the source lines that follow rows of files other than golden.py."""
    out, prev = [], ""
    for line in text.splitlines(keepends=True):
        if line.startswith(SOURCE_INDENT) and "golden.py" not in prev:
            continue
        out.append(line)
        prev = line
    return "".join(out)


def folded_summary(text):
    """Folded stacks are many (the interpreter's start-up): the stacks through golden.py
    are kept, the others summed up in one line."""
    lines = text.splitlines(keepends=True)
    kept = [l for l in lines if "golden.py" in l]
    total = sum(int(l.rsplit(" ", 1)[1]) for l in lines)
    return "".join(kept) + "# %d stacks, %d bytes in all\n" % (len(lines), total)


def output(memprof, db, args):
    p = subprocess.run([memprof, *args, db], capture_output=True, timeout=120, cwd=GOLDEN)
    if p.returncode != 0 or p.stderr:
        sys.exit("FAIL: memprof %s: exit status %d, stderr %r\n%s" % (" ".join(args), p.returncode,
                                                                   p.stderr.decode(), REGEN_HINT))
    text = p.stdout.decode()
    if "--format=folded" in args:
        return folded_summary(text)
    return machine_independent(text)


def main():
    regen = sys.argv[1:2] == ["--regen"]
    memprof = os.path.abspath(sys.argv[-1])
    tmp = tempfile.mkdtemp(prefix="memprof-golden-")
    try:
        db = os.path.join(tmp, "capture.db")
        with open(db, "wb") as f:
            f.write(lzma.decompress(open(CAPTURE, "rb").read()))
        if regen:
            os.makedirs(EXPECTED, exist_ok=True)
            for name in os.listdir(EXPECTED):
                os.unlink(os.path.join(EXPECTED, name))
            for name, args in COMMANDS:
                with open(os.path.join(EXPECTED, name), "w") as f:
                    f.write(output(memprof, db, args))
            print("wrote %d expected outputs to %s" % (len(COMMANDS), EXPECTED))
            return 0
        failed = 0
        size = os.path.getsize(CAPTURE)
        if size >= MAX_CAPTURE_BYTES:
            print("FAIL: %s is %d bytes (keep it under %d)" % (CAPTURE, size, MAX_CAPTURE_BYTES))
            failed += 1
        listed = sorted(name for name, _ in COMMANDS)
        present = sorted(os.listdir(EXPECTED))
        if listed != present:
            print("FAIL: expected/ holds %s, the test lists %s" % (present, listed))
            failed += 1
        for name, args in COMMANDS:
            path = os.path.join(EXPECTED, name)
            want = open(path).read() if os.path.exists(path) else ""
            got = output(memprof, db, args)
            if got != want:
                failed += 1
                print("FAIL: memprof %s differs from %s:" % (" ".join(args), os.path.relpath(path, HERE)))
                sys.stdout.writelines(difflib.unified_diff(
                    want.splitlines(keepends=True), got.splitlines(keepends=True),
                    fromfile="expected/" + name, tofile="memprof " + " ".join(args)))
        print("%d golden outputs, %d failed" % (len(COMMANDS), failed))
        if failed:
            print(REGEN_HINT)
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


sys.exit(main())
