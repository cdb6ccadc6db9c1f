"""Output naming: MEMPROF_OUTPUT with and without %p; processes sharing one name get
name.db, name.1.db, ... and no file is ever overwritten."""
import os
import subprocess

import harness
from harness import expect_eq
from harness import preload_env
from native_common import expect_row, marks, meta, prog, src

SRC = src("forks.c")
NAMING = marks(SRC, "NAMING")["NAMING"]


def check(db, pid=None):
    rows = harness.report_rows(db)
    expect_row(rows, SRC, NAMING, "naming run", allocations=1, allocated_bytes=10240, end_bytes=10240)
    s = harness.stats(db)
    expect_eq((s["allocations"], s["status"]), (1, "complete"), "%s (allocations, status)" % db)
    if pid is not None:
        expect_eq(int(meta(db)["pid"]), pid, "pid in %s" % db)


def run(env, shell=False):
    """Runs `forks naming` under the preload (shell: exec'd by `sh -c`, the root being the
    shell); returns its pid."""
    argv = [prog("forks"), "naming"]
    if shell:
        argv = ["/bin/sh", "-c", 'exec "$0" naming', prog("forks")]
    p = subprocess.Popen(argv, env=preload_env(env), stdout=subprocess.PIPE)
    out, _ = p.communicate(timeout=120)
    expect_eq((p.returncode, out), (0, b"naming done\n"), "exit status and stdout")
    return p.pid


def test_fixed_name_twice():
    pids = [run({"MEMPROF_OUTPUT": "fixed.db"}) for _ in range(2)]
    expect_eq(sorted(os.listdir(".")), ["fixed.1.db", "fixed.db"], "files")
    check("fixed.db", pids[0])
    check("fixed.1.db", pids[1])


def test_fixed_name_in_a_directory_without_extension():
    os.mkdir("out")
    pids = [run({"MEMPROF_OUTPUT": "out/prof"}) for _ in range(3)]
    expect_eq(sorted(os.listdir("out")), ["prof", "prof.1", "prof.2"], "files")
    for name, pid in zip(["prof", "prof.1", "prof.2"], pids):
        check(os.path.join("out", name), pid)


def test_directory():
    """A pattern that names a directory (one that exists, or any ending in '/') puts
    memprof.<pid>.db in it (it wrote profiles.1 beside the directory); a missing one
    ending in '/' is said in one line, and the program runs as without memprof."""
    os.mkdir("profiles")
    pids = [run({"MEMPROF_OUTPUT": out}) for out in ("profiles", "profiles/", os.path.abspath("profiles"))]
    names = ["memprof.%d.db" % pid for pid in pids]
    expect_eq((sorted(os.listdir("profiles")), sorted(os.listdir("."))), (sorted(names), ["profiles"]), "files")
    for name, pid in zip(names, pids):
        check(os.path.join("profiles", name), pid)
    p = subprocess.Popen([prog("forks"), "naming"], env=preload_env({"MEMPROF_OUTPUT": "missing/"}),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=120)
    expect_eq((p.returncode, out), (0, b"naming done\n"), "missing/: exit status and stdout")
    expect_eq(err.decode(), "memprof: cannot create missing/memprof.%d.db: No such file or directory\n" % p.pid,
              "missing/: stderr")


def test_existing_file_not_overwritten():
    with open("fixed.db", "wb") as f:
        f.write(b"not a memprof file\n")
    pid = run({"MEMPROF_OUTPUT": "fixed.db"})
    with open("fixed.db", "rb") as f:
        expect_eq(f.read(), b"not a memprof file\n", "the existing file")
    expect_eq(sorted(os.listdir(".")), ["fixed.1.db", "fixed.db"], "files")
    check("fixed.1.db", pid)


def test_existing_file_not_overwritten_by_an_exec():
    """A root that execs (a shell shim: `sh -c 'exec prog'`) hands its file over to the new
    image, which replaces the file the root made (fixed.1.db, as fixed.db was taken), not
    the name the pattern gives: the existing fixed.db is left alone."""
    with open("fixed.db", "wb") as f:
        f.write(b"not a memprof file\n")
    pid = run({"MEMPROF_OUTPUT": "fixed.db", "MEMPROF_FOLLOW": "root"}, shell=True)
    with open("fixed.db", "rb") as f:
        expect_eq(f.read(64), b"not a memprof file\n", "the existing file")
    expect_eq(sorted(os.listdir(".")), ["fixed.1.db", "fixed.db"], "files")
    check("fixed.1.db", pid)


def test_pid_pattern():
    pid = run({"MEMPROF_OUTPUT": "out.%p.db"})
    expect_eq(os.listdir("."), ["out.%d.db" % pid], "files")
    check("out.%d.db" % pid, pid)


def test_concurrent_processes_one_name():
    n = 6
    ps = [subprocess.Popen([prog("forks"), "naming"], env=preload_env({"MEMPROF_OUTPUT": "par.db"}),
                           stdout=subprocess.PIPE) for _ in range(n)]
    for p in ps:
        out, _ = p.communicate(timeout=120)
        expect_eq((p.returncode, out), (0, b"naming done\n"), "exit status and stdout")
    names = ["par.db"] + ["par.%d.db" % i for i in range(1, n)]
    expect_eq(sorted(os.listdir(".")), sorted(names), "files")
    pids = set()
    for name in names:
        check(name)
        pids.add(int(meta(name)["pid"]))
    expect_eq(pids, set(p.pid for p in ps), "one file per process")


if __name__ == "__main__":
    harness.run(globals())
