"""Sampling mode (MEMPROF_SAMPLE_BYTES): estimates against exact mode on the same program.

The program's top lines are known in advance (tests/bench/py_alloc.py): 8 x 16 MiB kept
(line "L:big"), 500,000 kept strings (line "L:grow"), 2,000,000 short-lived dicts
("L:churn"). Sampled estimates of allocated bytes and of bytes alive at the peak must be
within 10% of the exact figures for the top lines; frees of sampled blocks stay paired
(no unmatched frees), and the file is much smaller than in exact mode.
"""
import os

import harness
from harness import expect_eq, line_of, pythons, profile, report_rows, row_at, rows_at, stats

BENCH = os.path.join(os.path.dirname(harness.HERE), "bench")
PROG = os.path.join(BENCH, "py_alloc.py")
SAMPLEFREE_SRC = os.path.join(harness.HERE, "sampling", "samplefree.c")


def run(py, sample, env=None):
    env = dict(env or {})
    if sample:
        env["MEMPROF_SAMPLE_BYTES"] = str(sample)
    p, files = profile([py, PROG], env=env, check_rc=0)
    expect_eq(len(files), 1, "profile files")
    return files[0]


def line_sum(rows, line):
    """One source line's figures, summed over the functions on it (a comprehension's
    frame and its enclosing function share the line)."""
    m = rows_at(rows, "py_alloc.py", line)
    if not m:
        raise AssertionError("no row at py_alloc.py:%d" % line)
    return {k: sum(r[k] for r in m) for k in ("peak_bytes", "allocated_bytes", "allocations", "end_bytes")}


def within(got, want, rel, what):
    if want == 0:
        expect_eq(got, 0, what)
    elif abs(got - want) > rel * want:
        raise AssertionError("%s: sampled %d, exact %d (%.1f%% off, %d%% allowed)" % (
            what, got, want, 100.0 * abs(got - want) / want, int(rel * 100)))


def test_estimates_match_exact_mode():
    for py in pythons():
        compare(py, {})


def test_estimates_match_exact_mode_pythonmalloc_malloc():
    # Python's allocators are then malloc itself: the sampling wrappers of the MEM and OBJ
    # domains must guard their calls (a block counted down once, not again by malloc's hook)
    compare(pythons()[0], {"PYTHONMALLOC": "malloc"})


def compare(py, env):
    exact_db = run(py, 0, env)
    # N = 16 KiB: ~8,000 samples on L:grow. Measured spread over 10 runs: about 1.5% (one
    # standard deviation) for its allocated bytes, allocations and bytes live at the end,
    # so 10% is over 6 of them. (At 64 KiB live-at-end spread 4%: 10% failed about one
    # run in a hundred. See the README for the accuracy at 512 KiB.)
    sampled_db = run(py, 16 * 1024, env)
    ex, sa = report_rows(exact_db), report_rows(sampled_db)
    big, grow = line_of(PROG, "# L:big"), line_of(PROG, "# L:grow")
    # the kept buffers: 8 x 16 MiB, far above the sampling interval, always sampled
    eb, sb = line_sum(ex, big), line_sum(sa, big)
    expect_eq(sb["peak_bytes"] >= 8 * 16 << 20, True, "sampled big line at the peak")
    within(sb["peak_bytes"], eb["peak_bytes"], 0.10, "%s L:big peak" % py)
    within(sb["allocated_bytes"], eb["allocated_bytes"], 0.10, "%s L:big allocated" % py)
    eg, sg = line_sum(ex, grow), line_sum(sa, grow)
    within(sg["allocated_bytes"], eg["allocated_bytes"], 0.10, "%s L:grow allocated" % py)
    within(sg["end_bytes"], eg["end_bytes"], 0.10, "%s L:grow live at end" % py)
    within(sg["allocations"], eg["allocations"], 0.10, "%s L:grow allocations" % py)
    es, ss = stats(exact_db), stats(sampled_db)
    within(ss["allocated_bytes"], es["allocated_bytes"], 0.10, "%s total allocated" % py)
    within(ss["peak_heap_bytes"], es["peak_heap_bytes"], 0.10, "%s peak heap" % py)
    within(ss["allocations"], es["allocations"], 0.10, "%s allocations" % py)
    within(ss["frees"], es["frees"], 0.10, "%s frees" % py)
    expect_eq(ss["unmatched_frees"], 0, "%s unmatched frees in sampling mode" % py)
    # (Debian's python3: 233-241 KB against 1,184 KB; a bound of 5x failed now and then)
    if os.path.getsize(sampled_db) * 4 > os.path.getsize(exact_db):
        raise AssertionError("sampled file %d bytes vs exact %d" % (
            os.path.getsize(sampled_db), os.path.getsize(exact_db)))


SMALL = os.path.join(harness.HERE, "sampling", "smallblocks.py")


def test_small_blocks_freed():
    """Sampled small blocks are freed where the program frees them: pymalloc's free is not
    wrapped in sampling mode, so a sampled block must never live in its pools (taken from
    the RAW domain's allocator instead, a realloc moved out). smallblocks.py drops 200,000
    lists grown to 40 items and 200,000 dicts (nothing of theirs may be live at the end,
    even sampled: a block whose free went unseen would be) and keeps 100,000 item arrays
    of 320 bytes (32,000,000 bytes live at the end, within 10% sampled)."""
    for py in pythons():
        p, files = profile([py, SMALL], env={"MEMPROF_SAMPLE_BYTES": str(16 * 1024)}, check_rc=0)
        expect_eq((p.stdout, len(files)), (b"100000\n", 1), "%s smallblocks.py" % py)
        rows = report_rows(files[0])
        for mark in ("# L:append", "# L:dict"):
            m = rows_at(rows, "smallblocks.py", line_of(SMALL, mark))
            expect_eq(bool(m) and all(r["allocated_bytes"] > 0 for r in m), True, "%s %s sampled" % (py, mark))
            expect_eq(sum(r["end_bytes"] for r in m), 0, "%s %s live at the end" % (py, mark))
        keep = row_at(rows, "smallblocks.py", line_of(SMALL, "# L:keep"))
        within(keep["end_bytes"], 32000000, 0.10, "%s L:keep live at the end" % py)
        expect_eq(stats(files[0])["unmatched_frees"], 0, "%s unmatched frees" % py)


def test_allocated_blocks_unchanged():
    """What the program sees of its allocators does not change in sampling mode:
    sys.getallocatedblocks() moves as without memprof over 200,000 dropped lists and
    dicts, at N = 4 KiB (some 75,000 samples, each taken out of pymalloc's pools)."""
    prog = os.path.join(harness.HERE, "sampling", "allocatedblocks.py")
    for py in pythons():
        plain = harness.run_plain([py, prog])
        p, files = profile([py, prog], env={"MEMPROF_SAMPLE_BYTES": "4096"}, check_rc=0)
        expect_eq((p.stdout, len(files)), (plain.stdout, 1), "%s allocatedblocks.py" % py)
        expect_eq(stats(files[0])["allocations"] > 10000, True, "%s samples" % py)


def test_native_large_blocks_exact():
    # Blocks far larger than N are sampled with probability 1 - exp(-size/N) = 1 and weigh
    # exactly their size: tests/e2e/native/basic.c keeps 3 x 1 MiB at @KEEP and allocates
    # calloc(4, 1 MiB) at @CALLOC; with N = 4 KiB both lines are exact.
    prog = harness.testbin(os.path.join("native", "basic"))
    src = os.path.join(harness.HERE, "native", "basic.c")
    p, files = profile([prog], env={"MEMPROF_SAMPLE_BYTES": "4096"})
    expect_eq(len(files), 1, "profile files")
    rows = report_rows(files[0])
    keep = row_at(rows, "/basic.c", line_of(src, "@KEEP"))
    expect_eq((keep["allocated_bytes"], keep["allocations"], keep["end_bytes"]), (3 << 20, 3, 3 << 20), "@KEEP")
    calloc = row_at(rows, "/basic.c", line_of(src, "@CALLOC"))
    expect_eq((calloc["allocated_bytes"], calloc["allocations"]), (4 << 20, 1), "@CALLOC")
    expect_eq(stats(files[0])["unmatched_frees"], 0, "unmatched frees")


SAMPLEFREE = os.path.join("sampling", "samplefree")


def test_frees_paired_when_crowded():
    """Every sampled block's free is seen however many sampled blocks are live: 200,000
    blocks of 256 bytes at N = 4 KiB (some 12,000 sampled blocks live at once, more than
    the smallest table holds, so buckets spill) and 500 mmap'd blocks of 400,000 bytes at
    N = 64 KiB (all sampled, a few pages apart: addresses that crowd few buckets unless
    mixed), all freed. Before, a spilled block's free was skipped once its bucket had a
    free slot again: 66,718 blocks (16.3 MiB) never freed, and 170 MB live at the end of
    the mmap'd ones."""
    prog = harness.testbin(SAMPLEFREE)
    for mode, n in (("many", 4096), ("spaced", 65536)):
        p, files = profile([prog, mode], env={"MEMPROF_SAMPLE_BYTES": str(n)}, check_rc=0)
        expect_eq(len(files), 1, "%s: profile files" % mode)
        s = stats(files[0])
        expect_eq(s["allocations"] > (1000 if mode == "many" else 400), True, "%s: samples" % mode)
        expect_eq((s["frees"], s["unmatched_frees"], s["leaked_blocks"]), (s["allocations"], 0, 0),
                  "%s: frees paired (%d allocations)" % (mode, s["allocations"]))
        m = rows_at(report_rows(files[0]), "samplefree.c", line_of(SAMPLEFREE_SRC, "@MANY"))
        expect_eq(sum(r["end_bytes"] for r in m), 0, "%s: live at the end" % mode)
        # the charts say their figures are estimates, as the text outputs do
        expect_eq("; sampled (one per " in harness.analyze("flamegraph", files[0]), True, "%s: flamegraph" % mode)
        expect_eq("(heap sampled, one per " in harness.analyze("plot", files[0]), True, "%s: plot" % mode)


def test_fork_while_spilled():
    """A fork while another thread holds the lock of the spilled sampled blocks: the
    child's first sampled allocation must not wait for it for ever (at N = 512 bytes, 6
    children of 10 hung before the lock was taken around fork)."""
    prog = harness.testbin(SAMPLEFREE)
    p, files = profile([prog, "fork"], env={"MEMPROF_SAMPLE_BYTES": "512", "MEMPROF_FOLLOW": "all"}, check_rc=0)
    expect_eq(p.stdout, b"children hung: 0\n", "children of a program whose threads allocate")
    expect_eq(len(files), 11, "files: the program and its 10 children")
    for f in files:
        expect_eq(stats(f)["status"], "complete", "status of %s" % f)


if __name__ == "__main__":
    harness.run(globals())
