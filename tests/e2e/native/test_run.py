"""`memprof run PROGRAM`: the program runs under the library found beside the analyzer,
with the exit status, signal, output and errors of a plain run (one line more on stderr,
naming the file), also when the name is taken (name.1.db), when a signal is sent to it
(memprof run execs the program: the pid is the program's, a signal reaches it once) and for
a Python program with the options' settings."""
import os
import signal
import subprocess
import sys

import harness
from harness import expect_eq
from native_common import MiB, expect_row, marks, meta, prog, src

SRC = src("exits.c")
EXITS = prog("exits")


def run_env():
    """The caller's environment without memprof's settings or a preload of its own."""
    return {k: v for k, v in os.environ.items()
            if (not k.startswith("MEMPROF_") or k in harness.HARNESS_VARS) and k != "LD_PRELOAD"}


def memprof_run(*args, **kw):
    return subprocess.run([harness.BIN, "run"] + list(args), env=run_env(), capture_output=True, timeout=300, **kw)


def written(stderr):
    """The profile named by run's last line on stderr; the other lines (the program's)."""
    lines = stderr.decode().splitlines(keepends=True)
    if not lines or not lines[-1].startswith("memprof: profile written to "):
        raise AssertionError("no 'profile written' line: %r" % stderr[-1000:])
    name = lines[-1][len("memprof: profile written to "):].split(" (memprof report ")[0]
    return name, "".join(lines[:-1]).encode()


def check_before(db):
    rows = harness.report_rows(db)
    expect_row(rows, SRC, marks(SRC, "BEFORE")["BEFORE"], "5 x 1 MiB", allocations=5, allocated_bytes=5 * MiB)


def test_exit_status_output_and_file():
    plain = harness.run_plain([EXITS, "return3"], env=run_env())
    p = memprof_run(EXITS, "return3")
    expect_eq(p.returncode, 3, "exit status")
    expect_eq(p.stdout, plain.stdout, "stdout")
    name, rest = written(p.stderr)
    expect_eq(rest, plain.stderr, "the program's stderr")
    expect_eq(name, "memprof.%d.db" % int(meta(name)["pid"]), "default name memprof.<pid>.db")
    expect_eq(sorted(f for f in os.listdir(".") if f.endswith(".db")), [name], "one file, the one named")
    check_before(name)
    expect_eq(harness.stats(name)["status"], "complete", "status")


def test_exec_names_both_files():
    """A program that execs another keeps its profile (not a wrapper): run names the
    first image's file when it execs, then the new image's; a shell that execs the
    program hands its file over, and run names that one file once."""
    p = memprof_run(prog("forks"), "reexec")
    expect_eq((p.returncode, p.stdout), (0, b"execd done\n"), "exit status and stdout")
    said = [l.split(" (memprof report ")[0][len("memprof: profile written to "):]
            for l in p.stderr.decode().splitlines() if l.startswith("memprof: profile written to ")]
    pid = int(meta(said[0])["pid"]) if said else 0
    expect_eq(said, ["memprof.%d.db" % pid, "memprof.%d.1.db" % pid], "files named: %r" % p.stderr)
    expect_eq(sorted(f for f in os.listdir(".") if f.endswith(".db")), sorted(said), "the files written")
    for f in said:
        os.unlink(f)
    p = memprof_run("/bin/sh", "-c", "exec %s execd" % prog("forks"))
    name, rest = written(p.stderr)
    expect_eq((rest, sorted(f for f in os.listdir(".") if f.endswith(".db"))), (b"", [name]),
              "one file from a shell that execs the program")


def test_static_program_said():
    """A statically linked program runs as it would (its output and exit status), and
    run says in one line that it could not be profiled instead of saying nothing."""
    p = memprof_run(prog("static"))
    expect_eq((p.returncode, p.stdout), (3, b"static\n"), "exit status and stdout")
    err = p.stderr.decode()
    if err.count("\n") != 1 or "is statically linked" not in err or "writes no profile" not in err:
        raise AssertionError("stderr: %r" % err)
    expect_eq([f for f in os.listdir(".") if f.endswith(".db")], [], "no profile")


def test_killed_by_signal():
    """A program that aborts: memprof dies of SIGABRT too (and leaves no core file)."""
    p = memprof_run(EXITS, "abort")
    expect_eq(p.returncode, -signal.SIGABRT, "killed by SIGABRT")
    name, _ = written(p.stderr)
    check_before(name)
    expect_eq([f for f in os.listdir(".") if f.startswith("core")], [], "no core file")


def test_signal_passed_on():
    """SIGTERM sent to `memprof run`'s pid reaches the program, once (before, a parent
    process passed on what it got: timeout(1), which signals its child and its group,
    reached the program twice)."""
    p = subprocess.Popen([harness.BIN, "run", EXITS, "sleep"], env=run_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    expect_eq(p.stdout.readline(), b"mode sleep\n", "first line")
    expect_eq(p.stdout.readline(), b"ready\n", "the program is sleeping")
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    expect_eq(p.returncode, -signal.SIGTERM, "killed by SIGTERM")
    name, _ = written(err)
    check_before(name)


def test_name_taken():
    """-o out.db with out.db there: the library writes out.1.db, and run names that."""
    with open("out.db", "w") as f:
        f.write("mine\n")
    p = memprof_run("-o", "out.db", EXITS, "return3")
    expect_eq(p.returncode, 3, "exit status")
    name, _ = written(p.stderr)
    expect_eq(name, "out.1.db", "file named")
    check_before(name)
    expect_eq(open("out.db").read(), "mine\n", "the file that was there")


def test_children_and_subprocesses():
    """One line, naming the program's own file, however many processes it starts: a
    subprocess whose child closes every descriptor before its exec (close_fds, in a vfork
    child sharing the parent's memory) took memprof's stderr away from the parent, and
    the line was never printed; forked children each printed the parent's line."""
    py = harness.pythons()[0]
    prog = ("import os, subprocess, sys\n"
            "subprocess.run(['true'])\n"
            "for _ in range(3):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        keep = bytearray(1 << 20)\n"
            "        os._exit(0) if sys.argv[1] == '_exit' else sys.exit(0)\n"
            "    os.waitpid(pid, 0)\n"
            "print('done')\n")
    for how in ("_exit", "exit"):
        p = memprof_run(py, "-c", prog, how)
        expect_eq((p.returncode, p.stdout), (0, b"done\n"), "%s: status and output (stderr %r)" % (how, p.stderr))
        name, rest = written(p.stderr)
        expect_eq(rest, b"", "%s: one line on stderr" % how)
        files = [f for f in os.listdir(".") if f.endswith(".db")]
        expect_eq(len(files), 4, "%s: the program's file and its 3 children's" % how)
        for f in files:
            os.unlink(f)


def test_installed_tree_moved():
    """An install tree copied elsewhere (meson install --destdir: bin/memprof and
    lib/<arch>/libmemprof.so under another root) runs with its own library: run looks in
    the tree it is in before the configured libdir, where nothing is installed."""
    build = os.path.dirname(os.path.dirname(os.path.abspath(harness.BIN)))
    dest = os.path.abspath("dest")
    subprocess.run(["meson", "install", "-C", build, "--destdir", dest, "--no-rebuild", "--quiet"], check=True,
                   capture_output=True, timeout=300)
    found = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs]
    exe, = [f for f in found if f.endswith("/bin/memprof")]
    lib, = [f for f in found if f.endswith("/libmemprof.so")]
    p = subprocess.run([exe, "run", "-o", "moved.db", EXITS, "return3"], env=run_env(), capture_output=True,
                       timeout=300)
    expect_eq(p.returncode, 3, "exit status (stderr %r)" % p.stderr[-1000:])
    name, _ = written(p.stderr)
    expect_eq(name, "moved.db", "file")
    check_before(name)
    import sqlite3
    c = sqlite3.connect("file:%s?mode=ro" % name, uri=True)
    loaded = [m for m, in c.execute("SELECT path FROM modules") if m.endswith("/libmemprof.so")]
    c.close()
    expect_eq([os.path.realpath(m) for m in loaded], [os.path.realpath(lib)], "the library of the tree the command is in")


def test_python_with_options():
    """A .py program runs with python3; --native, --sample-bytes and -o reach the library."""
    with open("app.py", "w") as f:
        f.write("import sys\nkeep = bytearray(8 << 20)\nprint('done')\nsys.exit(4)\n")
    p = memprof_run("--native", "--sample-bytes=65536", "-o", "app.%p.db", "app.py")
    expect_eq(p.returncode, 4, "exit status (stderr %r)" % p.stderr[-1000:])
    expect_eq(p.stdout, b"done\n", "stdout")
    name, rest = written(p.stderr)
    expect_eq(rest, b"", "nothing else on stderr")
    m = meta(name)
    # (python3 on PATH may be pyenv's shim: the Python image takes the shim's file over by
    # its absolute path)
    expect_eq(os.path.basename(name), "app.%s.db" % m["pid"], "file named by the pattern")
    expect_eq(m["native_stacks"], "1", "--native")
    s = harness.stats(name)
    expect_eq(s["sample_bytes"], 65536, "--sample-bytes")
    expect_eq("app.py" in s["command"] and bool(m.get("python_version")), True,
              "a Python profile of app.py: %r" % s["command"])


def test_bad_uses():
    """One line on stderr (with the usage hint) and status 2 for usage errors; a program
    that cannot be run: 127 as in a shell, one line, no file."""
    for args in ([], ["--bogus", EXITS], ["--sample-bytes=-1", EXITS], ["--follow=some", EXITS], ["-o"]):
        p = memprof_run(*args)
        expect_eq(p.returncode, 2, "status of run %r" % args)
        expect_eq(p.stderr.decode().count("\n"), 1, "usage error of run %r: %r" % (args, p.stderr))
    p = memprof_run("./no-such-program")
    expect_eq(p.returncode, 127, "status for a missing program")
    expect_eq(p.stderr, b"memprof: run: ./no-such-program: No such file or directory\n", "its message")
    expect_eq([f for f in os.listdir(".") if f.endswith(".db")], [], "no file")


if __name__ == "__main__":
    harness.run(globals())
