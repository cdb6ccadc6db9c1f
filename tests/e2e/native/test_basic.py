"""Known lines: every allocation function at its own line with known sizes; edge cases of
the allocator API behave as without memprof; stats totals exact."""
import os
import tempfile

import harness
from harness import expect_eq
from native_common import MiB, expect_no_row, expect_row, marks, one_file, prog, run_both, src

SRC = src("basic.c")
EXPECTED_STDOUT = b"""posix_memalign=0 aligned=1 1 1 1 1 1
malloc(0) non-null errno=1234
realloc(p,0) null errno=4321
free(NULL) errno=77
malloc(huge) null errno=ENOMEM
calloc(overflow) null errno=ENOMEM
posix_memalign(3) EINVAL bad=null
reallocarray(overflow) null errno=ENOMEM
done
"""
TEMP_N = 1000
REALLOC_SIZES = [i * 1000 for i in range(1, 11)]
# blocks alive from their line to the end of the program: (marker, size, allocator)
KEPT = [("POSIX_MEMALIGN", 1000, "posix_memalign"), ("ALIGNED_ALLOC", 2048, "aligned_alloc"),
        ("MEMALIGN", 3000, "memalign"), ("VALLOC", 5000, "valloc"), ("PVALLOC", 6000, "pvalloc"),
        ("REALLOCARRAY", 7000, "reallocarray")]


def profile_basic():
    p, files = run_both([prog("basic")], expect_rc=0)
    expect_eq(p.stdout, EXPECTED_STDOUT, "stdout")
    return one_file(files)


def test_known_lines():
    db = profile_basic()
    L = marks(SRC, "KEEP", "TEMP", "REALLOC", "CALLOC", "MALLOC0", "REALLOC_NULL", *[k[0] for k in KEPT])
    rows = harness.report_rows(db)
    expect_row(rows, SRC, L["KEEP"], "3 x 1 MiB kept", peak_bytes=3 * MiB, allocated_bytes=3 * MiB,
               allocations=3, end_bytes=3 * MiB)
    expect_row(rows, SRC, L["TEMP"], "temporary loop", peak_bytes=0, allocated_bytes=TEMP_N * 100,
               allocations=TEMP_N, end_bytes=0)
    expect_row(rows, SRC, L["REALLOC"], "realloc chain", peak_bytes=10000, allocated_bytes=sum(REALLOC_SIZES),
               allocations=10, end_bytes=10000)
    expect_row(rows, SRC, L["CALLOC"], "calloc peak", peak_bytes=4 * MiB, allocated_bytes=4 * MiB,
               allocations=1, end_bytes=0)
    for m, size, _ in KEPT:
        expect_row(rows, SRC, L[m], m, peak_bytes=size, allocated_bytes=size, allocations=1, end_bytes=size)
    # malloc(0) is a call that returned a block (of 0 bytes), freed before the end
    expect_row(rows, SRC, L["MALLOC0"], "malloc(0)", peak_bytes=0, allocated_bytes=0, allocations=1, end_bytes=0)
    # realloc(NULL, 64) is an allocation; realloc(p, 0) freed it
    expect_row(rows, SRC, L["REALLOC_NULL"], "realloc(NULL, 64)", peak_bytes=0, allocated_bytes=64,
               allocations=1, end_bytes=0)


def test_failures_record_nothing():
    db = profile_basic()
    rows = harness.report_rows(db)
    L = marks(SRC, "REALLOC0", "HUGE", "HUGE_CALLOC", "BAD_ALIGN", "BAD_REALLOCARRAY")
    for m, line in L.items():
        expect_no_row(rows, SRC, line, m)
    # and no row anywhere but at the program's own lines: stdio has a static buffer
    want = set(marks(SRC, "KEEP", "TEMP", "REALLOC", "CALLOC", "MALLOC0", "REALLOC_NULL",
                     *[k[0] for k in KEPT]).values())
    got = set((r["file"].endswith("/basic.c"), r["line"]) for r in rows)
    expect_eq(got, set((True, l) for l in want), "report rows (basic.c?, line)")


def test_stats_exact():
    db = profile_basic()
    s = harness.stats(db)
    kept = sum(k[1] for k in KEPT)
    n_alloc = 3 + TEMP_N + len(REALLOC_SIZES) + len(KEPT) + 1 + 1 + 1  # + malloc(0), realloc(NULL), calloc
    expect_eq(s["allocations"], n_alloc, "allocations")
    # frees: temp loop, 9 realloc moves, realloc(p, 0), the calloc block, malloc(0)'s block
    expect_eq(s["frees"], TEMP_N + 9 + 1 + 1 + 1, "frees")
    expect_eq(s["allocated_bytes"], 3 * MiB + TEMP_N * 100 + sum(REALLOC_SIZES) + kept + 0 + 64 + 4 * MiB,
              "allocated_bytes")
    expect_eq(s["peak_heap_bytes"], 3 * MiB + 10000 + kept + 4 * MiB, "peak_heap_bytes")
    expect_eq(s["end_bytes"], 3 * MiB + 10000 + kept, "end_bytes")
    expect_eq(s["leaked_bytes"], 3 * MiB + 10000 + kept, "leaked_bytes")
    expect_eq(s["leaked_blocks"], 3 + 1 + len(KEPT), "leaked_blocks")
    expect_eq(s["dropped_events"], 0, "dropped_events")
    expect_eq(s["unmatched_frees"], 0, "unmatched_frees")
    expect_eq(s["replaced_allocations"], 0, "replaced_allocations")
    expect_eq(s["threads"], 1, "threads")
    expect_eq(s["status"], "complete", "status")
    want_alloc = {"malloc": 3 + TEMP_N + 1, "calloc": 1, "realloc": len(REALLOC_SIZES) + 1}
    for _, _, a in KEPT:
        want_alloc[a] = want_alloc.get(a, 0) + 1
    expect_eq(s["allocators"], want_alloc, "allocations by function")


def test_bad_sample_bytes():
    """MEMPROF_SAMPLE_BYTES that is not a number of bytes from 0 to 2^40 (strtoull took
    -1 as 2^64 - 1: one sample per 16 EiB, nothing recorded, nothing said): one line on
    stderr, and every allocation recorded."""
    argv = [prog("basic")]
    plain = harness.run_plain(argv)
    for value in ("-1", "18446744073709551615", "99999999999999999999", "12x", " 100", "100 ", "1099511627777"):
        for f in os.listdir("."):
            os.unlink(f)
        p, files = harness.profile(argv, env={"MEMPROF_SAMPLE_BYTES": value})
        expect_eq((p.returncode, p.stdout), (plain.returncode, plain.stdout), value + ": exit status and stdout")
        expect_eq(p.stderr, plain.stderr + ("memprof: MEMPROF_SAMPLE_BYTES=%s is not a number of bytes from 0 to "
                                            "2^40; recording every allocation\n" % value).encode(), value + ": stderr")
        s = harness.stats(one_file(files))
        expect_eq((s["sample_bytes"], s["allocations"] > 0), (0, True), value + ": exact mode")


def test_bad_setting_said_once():
    """A bad setting is said once for a whole run, not by every process that reads it
    again (a Pool's spawned workers each repeated it): memprof sets the variable to
    what it uses instead, which the processes started after read."""
    sh = "/bin/sh"
    p, files = harness.profile([sh, "-c", "env | grep ^MEMPROF_ | sort; %s -c true; %s -c true" % (sh, sh)],
                               env={"MEMPROF_SAMPLE_BYTES": "64k", "MEMPROF_FOLLOW": "bogus",
                                    "MEMPROF_INTERVAL_MS": "0"})
    expect_eq(p.stderr.decode().count("memprof: "), 3, "three lines, one a setting: %r" % p.stderr)
    out = p.stdout.decode()
    for kv in ("MEMPROF_SAMPLE_BYTES=0", "MEMPROF_FOLLOW=python", "MEMPROF_INTERVAL_MS=10"):
        expect_eq(kv in out.splitlines(), True, "%s in the program's environment: %r" % (kv, out))


def test_peak_and_leaks_views():
    db = profile_basic()
    L = marks(SRC, "CALLOC", "KEEP")
    import json
    peak = json.loads(harness.analyze("peak", "--format=json", "--limit=0", db))
    expect_eq(peak["total_bytes"], 3 * MiB + 10000 + sum(k[1] for k in KEPT) + 4 * MiB, "peak total")
    top = peak["stacks"][0]
    expect_eq((top["bytes"], top["blocks"], top["frames"][0]["line"], top["frames"][0]["function"]),
              (4 * MiB, 1, L["CALLOC"], "main"), "largest stack at the peak")
    leaks = json.loads(harness.analyze("leaks", "--format=json", "--limit=0", db))
    expect_eq(leaks["total_bytes"], 3 * MiB + 10000 + sum(k[1] for k in KEPT), "leaks total")
    top = leaks["stacks"][0]
    expect_eq((top["bytes"], top["blocks"], top["frames"][0]["line"]), (3 * MiB, 3, L["KEEP"]), "largest leak")
    expect_eq(sum(s["blocks"] for s in leaks["stacks"]), 3 + 1 + len(KEPT), "leaked blocks")


def test_timeseries_ends_at_end_heap():
    db = profile_basic()
    import csv, io
    rows = list(csv.DictReader(io.StringIO(harness.analyze("timeseries", "--format=csv", db))))
    if not rows:
        raise AssertionError("empty time series")
    heaps = [int(r["heap_bytes"]) for r in rows]
    times = [float(r["time_s"]) for r in rows]
    expect_eq(times, sorted(times), "time series in order")
    expect_eq(heaps[-1], 3 * MiB + 10000 + sum(k[1] for k in KEPT), "last heap sample")
    if max(heaps) > 3 * MiB + 10000 + sum(k[1] for k in KEPT) + 4 * MiB:
        raise AssertionError("heap sample above the peak: %r" % heaps)


def test_memory_short_while_writing():
    """Memory refused to the writer's compression (MEMPROF_TEST_FAIL_COMPRESS=1: the first
    time it sizes its buffer, which for `basic` is the chunk of all its events, written at
    exit): the program runs as without memprof, one line on stderr says recording stopped,
    and the file says so and counts every event the chunk held as dropped: as many as a
    whole run records (allocations and frees). MEMPROF_FLUSH_MS at its longest keeps the
    writer's timer from writing a chunk before exit: on a slow machine (UBSan, CI) a
    timer flush 100 ms in failed with the events so far, recording stopped there, and
    the events after it were never made (2,031 dropped of 2,034)."""
    full = harness.stats(profile_basic())
    p, files = harness.profile([prog("basic")], env={"MEMPROF_TEST_FAIL_COMPRESS": "1",
                                                     "MEMPROF_FLUSH_MS": "10000"})
    expect_eq((p.returncode, p.stdout), (0, EXPECTED_STDOUT), "exit status and stdout")
    expect_eq(p.stderr, b"memprof: out of memory compressing events; recording stopped\n", "stderr")
    st = harness.stats(one_file(files))
    expect_eq(st["dropped_events"], full["allocations"] + full["frees"], "dropped events")
    stop = st["recording_stopped"]
    expect_eq(stop["reason"], "out of memory compressing events", "recording_stopped reason")
    # the failure comes with the writer's last flush, after the program's last event
    # and RSS sample: later than the profile's duration, never before its start
    expect_eq(0 <= stop["time_s"] < 60, True, "recording stopped at %r" % stop)
    text = harness.analyze("report", one_file(files))
    expect_eq("WARNING: recording stopped at" in text and "events were dropped" in text, True,
              "the report's warnings: %s" % text[:600])


def test_file_never_synced():
    """The file is written without a single sync (SQLite's synchronous=OFF): a profile
    is a measurement, not a ledger, and each sync costs the program time. Setting it
    after the switch to WAL mode let that switch sync the new file four times
    (fdatasync, 2-3 ms of every profiled program's start-up here). strace, on the
    program alone, counts the process's sync calls: none, and the file is complete."""
    with tempfile.TemporaryDirectory() as d:
        log, db = os.path.join(d, "strace.log"), os.path.join(d, "p.db")
        p = harness.run_plain(["strace", "-f", "-qq", "-o", log,
                               "-e", "trace=fsync,fdatasync,sync,syncfs,msync,sync_file_range",
                               "-E", "LD_PRELOAD=" + harness.LIB, "-E", "MEMPROF_OUTPUT=" + db, prog("basic")])
        expect_eq((p.returncode, p.stdout), (0, EXPECTED_STDOUT), "exit status and stdout under strace")
        with open(log) as f:
            expect_eq([line for line in f if "(" in line], [], "sync calls")
        expect_eq(harness.stats(db)["status"], "complete", "the file's status")


if __name__ == "__main__":
    harness.run(globals())
