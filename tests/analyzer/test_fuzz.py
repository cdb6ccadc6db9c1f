#!/usr/bin/python3
"""Fuzz pass: thousands of damaged profiles through every command.

usage: test_fuzz.py MEMPROF MKPROFILE [FILES]

Two profiles are damaged: a synthetic one written by mkprofile (several threads, small
chunks, Python and native frames, samples, an END marker) and the golden real capture
(golden/capture.db.xz). Each damaged file gets one command (rotating through every
command and format) and must end with exit status 0 and nothing on stderr but notes
("memprof: note: ..." lines: --focus on a path the profile has no frame in, a source file
changed since the run), or exit status 1 and exactly one line "memprof: ..." on stderr: never a crash, a sanitizer
report, a hang (10 s timeout per run) or a usage error. Kinds of damage:

  flip     1-16 bit flips anywhere in the file
  bytes    1-20 bytes overwritten
  trunc    the file cut at a random length
  chunk    bytes of every event chunk's records changed before compression (mkprofile
           --mutate), so that the damage reaches the record decoder instead of zstd
  delete   1-5 rows deleted from random tables
  update   1-4 random columns of random rows set to odd values (huge, negative, text,
           blob, NULL)

Every fourth damaged file is read together with an undamaged one (several processes'
files, analyzer/merge.h). Deterministic (seeded); FILES (default 3000, MEMPROF_FUZZ_FILES
overrides) damaged files, run 4 at a time. A failing file is kept and its command printed."""
import concurrent.futures
import lzma
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

MEMPROF, MKPROFILE = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
FILES = int(os.environ.get("MEMPROF_FUZZ_FILES", sys.argv[3] if len(sys.argv) > 3 else 3000))
HERE = os.path.dirname(os.path.abspath(__file__))
TMP = tempfile.mkdtemp(prefix="memprof-fuzz-", dir=os.getcwd())
KEEP = os.path.join(TMP, "failures")

SPEC = """
meta command python3 app.py --fuzz
meta pid 4242
meta status complete
meta clock tsc
meta clock_start_ticks 1000
meta clock_ticks_per_sec 1000
meta start_time_unix 1700000000.5
meta cwd /src
thread 1 4242 main
thread 2 4243 worker
code 1 /src/app.py main main 10 e900ea04d80408f10a000103f8
code 2 /src/lib/util.py helper Util.helper 100 ef00
code 3 /src/real.py f f 1 8000d8090a8803886189078041dd08119021890c8c0c8041d80b0c88618834804b
code 4 app.py <listcomp> main.<locals>.<listcomp> 12 e800e802
modules
node 1 0 self:0
node 2 1 py:1:3
node 3 2 ip:2000
node 4 2 py:2:0
node 5 1 py:1:5
node 6 1 py:1:7
node 7 4 libc
node 8 1 py:1:8
node 9 0 sqlite
node 10 1 py:3:16
node 11 2 py:4:1
chunk 3
alloc 1 1100 1000 100 2 0
alloc 2 1200 2000 1000 4 11
alloc 1 1300 1000 50 3 1
free 2 1300 1000
alloc 2 1400 4000 5000 5 10
free 2 1500 2000
alloc 1 1600 5000 2000 6 0
free 2 1700 4000
alloc 1 1800 6000 300 7 2
free 2 1800 9999
alloc 2 1900 7000 10 8 0
alloc 1 2000 8000 40 9 4
alloc 2 2050 8100 64 10 0
alloc 1 2060 8200 6000000000 11 0
free 1 2070 8200
end 1 2100
free 2 2200 5000
alloc 2 2300 6000 500 2 0
free 1 2400 3000
free 1 2500 1000
sample 1000 10000000
sample 1300 12000000
sample 1650 20000000
sample 2100 15000000
sample 3000 14000000
"""

COMMANDS = [
    ["stats", "--format=json"], ["stats"], ["report", "--format=csv"], ["report"],
    ["report", "--format=json", "--by=function", "--sort=allocated"], ["report", "--by=file", "--focus=/src"],
    ["timeseries"], ["timeseries", "--format=json"], ["timeseries", "--format=mprof"],
    ["peak", "--format=json"], ["leaks", "--limit=0"], ["temporary", "--format=csv"], ["temporary"],
    ["lines", "LINES"], ["lines", "--format=json", "LINES:main"], ["lines", "--format=csv", "LINES"],
    ["flamegraph", "--format=folded"], ["flamegraph", "--metric=allocated"], ["flamegraph", "--metric=leaked"],
    ["plot"],
]
TABLES = ["meta", "threads", "modules", "pycode", "stack_nodes", "events", "samples"]
ODD = [0, -1, 1, 2 ** 31, 2 ** 32 + 7, 2 ** 63 - 1, -2 ** 63, "x", "", "9" * 30, b"\xff\x00\x80", None, 3.5]


def notes_only(err):
    """stderr of a command that succeeded: nothing, or notes only."""
    return all(line.startswith("memprof: note: ") for line in err.splitlines())


def flip(rnd, data):
    d = bytearray(data)
    for _ in range(rnd.randint(1, 16)):
        d[rnd.randrange(len(d))] ^= 1 << rnd.randrange(8)
    return d


def overwrite(rnd, data):
    d = bytearray(data)
    for _ in range(rnd.randint(1, 20)):
        d[rnd.randrange(len(d))] = rnd.randrange(256)
    return d


def damage_rows(rnd, path, kind):
    c = sqlite3.connect(path)
    try:
        for _ in range(rnd.randint(1, 5 if kind == "delete" else 4)):
            table = rnd.choice(TABLES)
            rows = [r[0] for r in c.execute("SELECT rowid FROM %s" % table)] if table != "meta" else \
                [r[0] for r in c.execute("SELECT key FROM meta")]
            if not rows:
                continue
            row = rnd.choice(rows)
            key = "key" if table == "meta" else "rowid"
            if kind == "delete":
                if table == "meta" and row == "schema_version":
                    continue
                c.execute("DELETE FROM %s WHERE %s = ?" % (table, key), (row,))
            else:
                cols = [r[1] for r in c.execute("PRAGMA table_info(%s)" % table)]
                col = rnd.choice(cols)
                if table == "meta" and (col == "key" or row == "schema_version"):
                    continue
                try:
                    c.execute("UPDATE %s SET %s = ? WHERE %s = ?" % (table, col, key), (rnd.choice(ODD), row))
                except sqlite3.Error:
                    pass  # a primary key clash
        c.commit()
    finally:
        c.close()


def make(i, base, lines_file):
    rnd = random.Random(1000003 * i + 17)
    kind = ("flip", "bytes", "trunc", "chunk", "delete", "update")[i % 6]
    path = os.path.join(TMP, "f%05d.db" % i)
    data = open(base, "rb").read()
    if kind == "flip":
        open(path, "wb").write(flip(rnd, data))
    elif kind == "bytes":
        open(path, "wb").write(overwrite(rnd, data))
    elif kind == "trunc":
        open(path, "wb").write(data[:rnd.randrange(len(data))])
    else:
        shutil.copy(base, path)
        if kind == "chunk":
            subprocess.run([MKPROFILE, "--mutate", path, str(rnd.randrange(1 << 30)), str(rnd.choice((1, 1, 1, 2, 4, 8)))],
                           check=True, capture_output=True, timeout=30)
        else:
            damage_rows(rnd, path, kind)
    args = [a.replace("LINES", lines_file) for a in COMMANDS[(i // 6) % len(COMMANDS)]]
    return kind, path, args


def one(i, bases):
    base, lines_file = bases[i % len(bases)]
    kind, path, args = make(i, base, lines_file)
    # every fourth file is read together with an undamaged one, as a second process
    # (analyzer/merge.h): the merge must fail as cleanly
    cmd = [MEMPROF, *args] + ([bases[(i // 4) % len(bases)][0]] if i % 4 == 3 else []) + [path]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return kind, "hang", cmd, ""
    err = p.stderr.decode(errors="replace")
    ok = (p.returncode == 0 and notes_only(err)) or (p.returncode == 1 and len(err.splitlines()) == 1 and
                                            err.startswith("memprof: "))
    if ok:
        os.unlink(path)
        return kind, "rc%d" % p.returncode, None, None
    return kind, "exit %d" % p.returncode, cmd, err


def main():
    started = time.monotonic()
    synthetic = os.path.join(TMP, "synthetic.db")
    p = subprocess.run([MKPROFILE, synthetic], input=SPEC.encode(), capture_output=True)
    if p.returncode:
        sys.exit("mkprofile: " + p.stderr.decode())
    golden = os.path.join(TMP, "golden.db")
    with open(golden, "wb") as f:
        f.write(lzma.decompress(open(os.path.join(HERE, "golden", "capture.db.xz"), "rb").read()))
    bases = [(synthetic, "app.py"), (golden, "golden.py")]
    for base, _ in bases:  # the undamaged profiles pass every command, alone and with the other
        for args in COMMANDS:
            args = [a.replace("LINES", "app.py" if base == synthetic else "golden.py") for a in args]
            for files in ([base], [base, synthetic if base == golden else golden]):
                r = subprocess.run([MEMPROF, *args, *files], capture_output=True, timeout=60)
                if r.returncode or not notes_only(r.stderr.decode(errors="replace")):
                    sys.exit("memprof %s on the undamaged profiles %s: %d %r" % (" ".join(args), files, r.returncode,
                                                                                 r.stderr))
    counts, failures = {}, []
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for kind, outcome, cmd, err in pool.map(lambda i: one(i, bases), range(FILES)):
            counts.setdefault(kind, {}).setdefault(outcome, 0)
            counts[kind][outcome] += 1
            if cmd:
                os.makedirs(KEEP, exist_ok=True)
                kept = os.path.join(KEEP, os.path.basename(cmd[-1]))
                shutil.move(cmd[-1], kept)
                failures.append((outcome, " ".join(cmd[:-1] + [kept]), err))
    for kind in sorted(counts):
        print("%-7s %s" % (kind, ", ".join("%s: %d" % kv for kv in sorted(counts[kind].items()))))
    print("%d damaged files in %.1f s" % (FILES, time.monotonic() - started))
    for outcome, cmd, err in failures[:20]:
        print("FAIL (%s): %s\n  stderr: %s" % (outcome, cmd, "\n  ".join((err or "").splitlines()[:12])))
    print("%d failures" % len(failures))
    if not failures:
        shutil.rmtree(TMP, ignore_errors=True)
    return 1 if failures else 0


sys.exit(main())
