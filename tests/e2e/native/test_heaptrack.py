"""heaptrack as an oracle: the sqlite3 shell on tests/bench/native_sqlite.sql under memprof and
under heaptrack; calls to allocation functions, peak heap and leaked bytes agree within 1%.

Normalization: heaptrack's preloaded library pulls in libstdc++, whose start-up allocates its
emergency exception pool (one malloc of ~71 KiB, never freed) in every traced program; memprof
does not see it (it is not the program's); heaptrack's default leak suppressions hide it from
its own leak total. That overhead is measured by running heaptrack on a
program with exactly one known allocation (10 KiB, kept) and subtracted. (heaptrack also does
not see memalign/pvalloc, which sqlite3 does not use; realloc counts as one call in both.)"""
import os
import re
import shutil
import subprocess

import harness
from harness import expect_eq
from native_common import one_file, prog, run_both

SQL = os.path.join(harness.HERE, "..", "bench", "native_sqlite.sql")
UNITS = {"B": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def heaptrack(argv):
    """Runs argv under heaptrack; returns (calls, peak bytes, leaked bytes, program stdout)."""
    if not shutil.which("heaptrack") or not shutil.which("heaptrack_print"):
        raise harness.Skip("heaptrack is not installed")
    out = os.path.abspath("ht.%d" % len(os.listdir(".")))
    p = subprocess.run(["heaptrack", "-o", out] + argv, capture_output=True, timeout=600,
                       env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
    expect_eq(p.returncode, 0, "heaptrack exit status (%r)" % p.stderr[-2000:])
    data = [f for f in os.listdir(".") if f.startswith(os.path.basename(out) + ".")]
    expect_eq(len(data), 1, "heaptrack data files %r" % data)
    pr = subprocess.run(["heaptrack_print", "-f", data[0], "-p", "0", "-a", "0", "-T", "0", "-l", "0"],
                        capture_output=True, text=True, timeout=600)
    expect_eq(pr.returncode, 0, "heaptrack_print exit status (%s)" % pr.stderr[-2000:])

    def field(name, conv):
        m = re.search(r"^%s: (\S+)" % re.escape(name), pr.stdout, re.M)
        if not m:
            raise AssertionError("no %r in heaptrack_print output:\n%s" % (name, pr.stdout[-3000:]))
        return conv(m.group(1))

    def size(s):
        m = re.fullmatch(r"([0-9.]+)([BKMGT]?)", s)
        return float(m.group(1)) * UNITS[m.group(2) or "B"]

    return (field("calls to allocation functions", int), field("peak heap memory consumption", size),
            field("total memory leaked", size), p.stdout)


def near(got, want, what, rel=0.01):
    if abs(got - want) > rel * want:
        raise AssertionError("%s: memprof %r, heaptrack %r (normalized): differ by %.3f%%, more than %g%%" % (
            what, got, want, 100.0 * abs(got - want) / want, 100 * rel))


def test_sqlite_against_heaptrack():
    sqlite3 = shutil.which("sqlite3")
    if not sqlite3:
        raise harness.Skip("no sqlite3 shell")
    # heaptrack's own allocations in a traced program: one known 10 KiB block otherwise
    calls0, peak0, leaked0, out0 = heaptrack([prog("forks"), "naming"])
    # heaptrack writes its own messages to stdout too
    expect_eq(b"\nnaming done\n" in out0, True, "baseline program output (%r)" % out0)
    # (heaptrack's default leak suppressions hide the pool from its leak total: measured apart)
    extra_calls, extra_bytes, extra_leaked = calls0 - 1, peak0 - 10240, leaked0 - 10240
    if not (0 <= extra_calls <= 4 and 0 <= extra_bytes <= 1 << 20 and -100 <= extra_leaked <= extra_bytes):
        raise AssertionError("heaptrack's own overhead out of the expected range: %d calls, %r bytes, %r leaked"
                             % (extra_calls, extra_bytes, extra_leaked))

    argv = [sqlite3, ":memory:", "-init", SQL, ".quit"]
    p, files = harness.profile(argv, check_rc=0)
    # the workload's random data makes the output differ from run to run; its shape does not
    expect_eq(len([l for l in p.stdout.splitlines() if b"|" in l]), 4, "sqlite3 output lines (%r)" % p.stdout)
    expect_eq(len(p.stdout.splitlines()), 4, "sqlite3 output lines (%r)" % p.stdout)
    s = harness.stats(one_file(files))
    expect_eq((s["dropped_events"], s["unmatched_frees"]), (0, 0), "(dropped_events, unmatched_frees)")

    calls, peak, leaked, out = heaptrack(argv)
    expect_eq(len([l for l in out.splitlines() if b"|" in l]), 4, "sqlite3 output lines under heaptrack (%r)" % out)
    near(s["allocations"], calls - extra_calls, "allocation calls")
    near(s["peak_heap_bytes"], peak - extra_bytes, "peak heap")
    near(s["leaked_bytes"], leaked - extra_leaked, "leaked bytes")
    print("memprof: %d calls, peak %d, leaked %d; heaptrack normalized: %d calls, peak %d, leaked %d"
          % (s["allocations"], s["peak_heap_bytes"], s["leaked_bytes"], calls - extra_calls,
             peak - extra_bytes, leaked - extra_leaked))


if __name__ == "__main__":
    harness.run(globals())
