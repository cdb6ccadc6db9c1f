"""Code imported from zip archives, on both interpreters: a zipapp (a #! line before a
deflated archive, run as `python3 app.pyz`) and a stored archive on PYTHONPATH. Their
file names are the archive's path and the member's (app.pyz/pkg/mod.py); the figures
are charged there as for any file, and the analyzer reads the lines' text from inside
the archive. mod.keep() keeps 1000 bytearray(1000) alive at its line: 1000 x (56 +
1001) bytes in 2000 blocks, plus the list's growth, and the loop's 743 ints of 256 and
more (made and freed at that line). A damaged or vanished archive
leaves the figures and shows no text."""
import json
import os
import zipfile

import harness
from pycommon import line_rows, listcomp, one, pythons, tag

MAIN = "import pkg.mod\nkept = pkg.mod.keep()\nprint(len(kept))\n"
MOD = ("# a module inside an archive\n"
       "def keep():\n"
       "    return [bytearray(1000) for _ in range(1000)]  # L:keep\n")
KEEP_LINE = 3
KEEP_TEXT = "return [bytearray(1000) for _ in range(1000)]  # L:keep"
WANT = 1000 * (56 + 1001)
SLACK = 16384  # the list of 1000 pointers and its resizes


def write_zip(path, files, method, prefix=b""):
    with open(path, "wb") as f:
        f.write(prefix)
        with zipfile.ZipFile(f, "w", method) as z:
            for name, text in files.items():
                z.writestr(name, text)


def check_keep(db, member, w, py):
    rows = harness.report_rows(db)
    rs = [r for r in line_rows(rows, member, KEEP_LINE) if r["function"] == listcomp(py, "keep")]
    if len(rs) != 1 or not WANT <= rs[0]["peak_bytes"] <= WANT + SLACK or \
            not 2000 + 743 <= rs[0]["allocations"] <= 2000 + 743 + 40:
        raise AssertionError("%s %s:%d: %s" % (w, member, KEEP_LINE, rs))
    return rs[0]["file"]


def text_lines(db, member):
    """`memprof lines MEMBER`'s JSON: whether it found the source, and its rows as
    (line, text)."""
    j = json.loads(harness.analyze("lines", member, "--format=json", db))
    return j["source_found"], [(r["line"], r["text"]) for r in j["rows"]]


def no_text(db, member, w):
    found, rows = text_lines(db, member)
    harness.expect_eq((found, rows[-1]), (False, (KEEP_LINE, "")), w)


def check_text(db, member, w):
    report = harness.analyze("report", "--limit=0", db)
    if KEEP_TEXT not in report:
        raise AssertionError("%s: the text of %s:%d is not in the report:\n%s" % (w, member, KEEP_LINE, report[:3000]))
    found, rows = text_lines(db, member)
    harness.expect_eq((found, rows[-1]), (True, (KEEP_LINE, "    " + KEEP_TEXT)), w + " lines " + member)


def test_zipapp_deflated_with_shebang():
    for py in pythons():
        w = tag(py)
        write_zip("app.pyz", {"__main__.py": MAIN, "pkg/__init__.py": "", "pkg/mod.py": MOD},
                  zipfile.ZIP_DEFLATED, prefix=("#!%s\n" % py).encode())
        p, files = harness.profile([py, "app.pyz"], check_rc=0)
        harness.expect_eq(p.stdout, b"1000\n", w + " stdout")
        db = one(files, w)
        name = check_keep(db, "app.pyz/pkg/mod.py", w, py)
        harness.expect_eq(name, os.path.join(os.getcwd(), "app.pyz/pkg/mod.py"), w + " file name")
        check_text(db, "app.pyz/pkg/mod.py", w)
        # the archive damaged after the run: the figures stay, the text goes, no error
        with open("app.pyz", "r+b") as f:
            f.truncate(os.path.getsize("app.pyz") - 30)
        check_keep(db, "app.pyz/pkg/mod.py", w, py)
        report = harness.analyze("report", "--limit=0", db)
        if KEEP_TEXT in report:
            raise AssertionError("%s: text shown from a damaged archive" % w)
        os.unlink("app.pyz")
        no_text(db, "app.pyz/pkg/mod.py", w + " lines, archive gone")
        os.unlink(db)


def test_stored_archive_on_pythonpath():
    for py in pythons():
        w = tag(py)
        write_zip("lib.zip", {"pkg/__init__.py": "", "pkg/mod.py": MOD}, zipfile.ZIP_STORED)
        with open("main.py", "w") as f:
            f.write(MAIN)
        p, files = harness.profile([py, "main.py"], env={"PYTHONPATH": "lib.zip"}, check_rc=0)
        harness.expect_eq(p.stdout, b"1000\n", w + " stdout")
        db = one(files, w)
        check_keep(db, "lib.zip/pkg/mod.py", w, py)
        check_text(db, "lib.zip/pkg/mod.py", w)
        # an archive whose member is not stored or deflated (method 12, bzip2) shows
        # no text; neither does a file of the archive's name that is not an archive
        write_zip("lib.zip", {"pkg/mod.py": MOD}, zipfile.ZIP_BZIP2)
        no_text(db, "lib.zip/pkg/mod.py", w + " bzip2 member")
        with open("lib.zip", "wb") as f:
            f.write(os.urandom(5000))
        no_text(db, "lib.zip/pkg/mod.py", w + " not an archive")
        os.unlink(db)


if __name__ == "__main__":
    harness.run(globals())
