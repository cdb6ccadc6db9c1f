"""End-to-end test harness: run real programs under libmemprof.so, read the profile with
the real analyzer, compare with numbers known in advance.

Environment (set by meson's test() and by scripts/test):
  MEMPROF_LIB       path of build/preload/libmemprof.so
  MEMPROF_BIN       path of build/analyzer/memprof
  MEMPROF_TESTBIN   build directory holding the compiled C test programs (tests/e2e/)
Each test file is a script of functions named test_*; run() executes them, each in a
fresh temporary directory, prints one line per test and a summary, exits 1 on failure,
77 if every test was skipped.
"""
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback

# The programs the tests run start with the default action for these signals, as from an
# interactive shell: a test runner started under nohup, or in the background of a
# script, ignores SIGHUP (or SIGINT and SIGQUIT), and exec passes that on, which the tests
# of signal handling would take for memprof's doing.
for _sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
    if signal.getsignal(_sig) == signal.SIG_IGN:
        signal.signal(_sig, signal.SIG_DFL)

LIB = os.environ.get("MEMPROF_LIB", "")
BIN = os.environ.get("MEMPROF_BIN", "")
TESTBIN = os.environ.get("MEMPROF_TESTBIN", "")
HERE = os.path.dirname(os.path.abspath(__file__))


class Skip(Exception):
    pass


def real_python(cmd="python3"):
    """The real interpreter behind a command (pyenv's python3 is a shell shim)."""
    exe = shutil.which(cmd)
    if not exe:
        return None
    out = subprocess.run([exe, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True)
    return out.stdout.strip() or None


def pythons():
    """Both interpreters of this machine: Debian's static one and the shared-libpython one on PATH."""
    seen, res = set(), []
    for p in ("/usr/bin/python3", real_python("python3")):
        if p and os.path.exists(p) and os.path.realpath(p) not in seen:
            seen.add(os.path.realpath(p))
            res.append(p)
    return res


# The harness's own settings (where the build is); every other MEMPROF_ variable is
# memprof's, and one left in the caller's environment (MEMPROF_SAMPLE_BYTES, MEMPROF_OUTPUT,
# MEMPROF_ROOT_PID of a profiled shell...) would change what a test measures.
HARNESS_VARS = ("MEMPROF_LIB", "MEMPROF_BIN", "MEMPROF_TESTBIN")


def preload_env(extra=None):
    """The environment of a profiled program: the caller's without memprof's settings,
    the library preloaded, then `extra`."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("MEMPROF_") or k in HARNESS_VARS}
    e["LD_PRELOAD"] = LIB
    if extra:
        e.update(extra)
    return e


def profile(argv, env=None, cwd=None, check_rc=None, timeout=300, input=None):
    """Runs argv under the preload in cwd; returns (CompletedProcess, [profile files])."""
    cwd = cwd or os.getcwd()
    e = preload_env(env)
    before = set(f for f in os.listdir(cwd) if f.startswith("memprof.") and f.endswith(".db"))
    p = subprocess.run(argv, env=e, cwd=cwd, capture_output=True, timeout=timeout, input=input)
    if check_rc is not None and p.returncode != check_rc:
        raise AssertionError("%s exited %d, expected %d\nstdout: %s\nstderr: %s" % (
            argv, p.returncode, check_rc, p.stdout[-2000:], p.stderr[-2000:]))
    after = sorted(f for f in os.listdir(cwd) if f.startswith("memprof.") and f.endswith(".db"))
    files = [os.path.join(cwd, f) for f in after if f not in before]
    return p, files


def run_plain(argv, env=None, cwd=None, timeout=300, input=None):
    e = dict(os.environ)
    e.pop("LD_PRELOAD", None)
    if env:
        e.update(env)
    return subprocess.run(argv, env=e, cwd=cwd, capture_output=True, timeout=timeout, input=input)


def analyze(*args, check=True):
    """Runs `memprof ARGS`; returns stdout text."""
    p = subprocess.run([BIN] + [str(a) for a in args], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError("memprof %s failed (%d): %s" % (" ".join(map(str, args)), p.returncode, p.stderr))
    return p.stdout if check else p


def stats(db, *extra):
    return json.loads(analyze("stats", "--format=json", *extra, db))


def report_rows(db, *extra):
    """`memprof report --format=csv` as a list of dicts with int fields."""
    text = analyze("report", "--format=csv", "--limit=0", *extra, db)
    rows = list(csv.DictReader(io.StringIO(text)))
    for r in rows:
        for k in ("line", "peak_bytes", "allocated_bytes", "allocations", "end_bytes"):
            r[k] = int(r[k])
    return rows


def rows_at(rows, file_suffix, line):
    """Rows whose file ends with file_suffix at that line (there is at most one per location)."""
    return [r for r in rows if r["file"].endswith(file_suffix) and r["line"] == line]


def row_at(rows, file_suffix, line):
    m = rows_at(rows, file_suffix, line)
    if len(m) != 1:
        raise AssertionError("expected one row at %s:%d, found %d; rows: %s" % (
            file_suffix, line, len(m), [(r["file"], r["line"]) for r in rows[:20]]))
    return m[0]


def line_of(path, marker):
    """1-based line number of the first line containing marker."""
    with open(path) as f:
        for i, l in enumerate(f, 1):
            if marker in l:
                return i
    raise AssertionError("marker %r not in %s" % (marker, path))


def expect_eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def expect_near(got, want, tol, what=""):
    if abs(got - want) > tol:
        raise AssertionError("%s: got %r, want %r ± %r" % (what, got, want, tol))


UNWIND_CHECK = re.compile(rb"memprof: unwinder check: (\d+) stacks, (\d+) answered by memprof's unwinder "
                          rb"\((\d+) unwound, the rest from its cache\), (\d+) differed")


def unwind_check(stderr, what):
    """The counts of the one MEMPROF_CHECK_UNWIND line on stderr: (stacks, answered,
    unwound); none may differ between memprof's unwinder and libunwind."""
    m = UNWIND_CHECK.findall(stderr)
    if len(m) != 1:
        raise AssertionError("%s: expected one unwinder check line on stderr: %s" % (what, stderr[-2000:]))
    stacks, answered, unwound, differed = map(int, m[0])
    expect_eq(differed, 0, "%s: stacks where the unwinders differ (of %d)" % (what, stacks))
    return stacks, answered, unwound


def testbin(name):
    p = os.path.join(TESTBIN, name)
    if not os.path.exists(p):
        raise AssertionError("test program %s not built" % p)
    return p


def run(module_globals):
    tests = sorted((k, v) for k, v in module_globals.items() if k.startswith("test_") and callable(v))
    only = sys.argv[1:]
    passed = failed = skipped = 0
    for name, fn in tests:
        if only and name not in only:
            continue
        d = tempfile.mkdtemp(prefix="memprof-" + name + "-")
        old = os.getcwd()
        os.chdir(d)
        try:
            fn()
            print("ok   %s" % name, flush=True)
            passed += 1
            shutil.rmtree(d, ignore_errors=True)
        except Skip as s:
            print("skip %s: %s" % (name, s), flush=True)
            skipped += 1
            shutil.rmtree(d, ignore_errors=True)
        except Exception:
            print("FAIL %s (files kept in %s)" % (name, d), flush=True)
            traceback.print_exc()
            failed += 1
        finally:
            os.chdir(old)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed else (77 if skipped and not passed else 0))
