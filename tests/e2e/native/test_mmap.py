"""Mapped memory: anonymous mmap and mremap at known lines, cut by munmap and MAP_FIXED;
files and reservations not recorded; malloc's own mappings recorded once, as malloc's;
exact in a sampled profile too; the program's output unchanged."""
import csv
import io
import os

import harness
from harness import expect_eq
from native_common import MiB, expect_no_row, expect_row, marks, meta, one_file, prog, run_both, src

SRC = src("mmap.c")
KiB = 1024
EXPECTED_STDOUT = b"munmap(unaligned)=-1 EINVAL mmap(0)=failed EINVAL errno kept=1\ndone\n"
# marker: (allocations, allocated bytes, bytes at the peak, bytes at the end)
WANT = {
    "KEEP": (3, 3 * MiB, 3 * MiB, 3 * MiB),
    "TEMP": (10, 640 * KiB, 0, 0),
    "ALIGNED": (1, 4 * MiB, 2 * MiB, 2 * MiB),     # head and tail cut off
    "HEAD": (1, MiB, MiB - 4096, 0),               # its first page cut, the rest after the peak
    "TRIM": (5, 5 * 64 * KiB, 0, 0),               # tail cut, then the rest unmapped
    "SPAN": (3, 3 * MiB, MiB, MiB),                # one munmap across the three
    "HOLE": (1, MiB, 768 * KiB, 768 * KiB),        # 256 KiB out of the middle
    "MREMAP_SRC": (1, MiB, 0, 0),                  # freed by the mremap
    "MREMAP": (1, 4 * MiB, 4 * MiB, 4 * MiB),
    "FIXED_BASE": (1, MiB, 768 * KiB, 768 * KiB),  # MAP_FIXED over its middle
    "FIXED": (1, 256 * KiB, 256 * KiB, 256 * KiB),
    "ODD": (1, 8192, 8192, 8192),                  # 5000 bytes: two pages
    "BIGMALLOC": (1, 8 * MiB, 8 * MiB, 8 * MiB),   # malloc's mapping: once, as malloc's
    "ERRNO": (1, 4096, 0, 0),
}
PEAK = 16 * MiB  # @PEAK (in map(), the line of its mmap call) mapped and unmapped
END = sum(w[3] for w in WANT.values())
AT_PEAK = sum(w[2] for w in WANT.values()) + PEAK


def profile(env=None):
    p, files = run_both([prog("mmap")], env=env, expect_rc=0)
    expect_eq(p.stdout, EXPECTED_STDOUT, "stdout")
    return one_file(files)


def check_rows(db, sampled=False):
    rows = harness.report_rows(db)
    L = marks(SRC, *WANT, "FILE", "RESERVE", "PEAK")
    for m, (n, allocated, peak, end) in WANT.items():
        if sampled and m == "BIGMALLOC":
            continue  # malloc's blocks are sampled: an estimate
        expect_row(rows, SRC, L[m], m, allocations=n, allocated_bytes=allocated, peak_bytes=peak, end_bytes=end)
    expect_no_row(rows, SRC, L["FILE"], "a file's pages")
    expect_no_row(rows, SRC, L["RESERVE"], "a PROT_NONE reservation")
    # the 16 MiB mapping is made in map(): its row is the mmap call's line there
    expect_row(rows, SRC, harness.line_of(SRC, "void *p = mmap(NULL, n"), "PEAK", allocations=1,
               allocated_bytes=PEAK, peak_bytes=PEAK, end_bytes=0)


def test_known_lines():
    check_rows(profile())


def test_stats_exact():
    s = harness.stats(profile())
    n_alloc = sum(w[0] for w in WANT.values()) + 1
    expect_eq(s["allocations"], n_alloc, "allocations")
    # cuts are not frees: TEMP's 10, HEAD's rest, TRIM's 5, SPAN's middle one, the mremap's
    # old mapping, the peak's, ERRNO's
    expect_eq(s["frees"], 10 + 1 + 5 + 1 + 1 + 1 + 1, "frees")
    expect_eq(s["allocators"], {"mmap": n_alloc - 2, "mremap": 1, "malloc": 1}, "allocators")
    expect_eq(s["allocated_bytes"], sum(w[1] for w in WANT.values()) + PEAK, "allocated_bytes")
    expect_eq(s["peak_heap_bytes"], AT_PEAK, "peak_heap_bytes")
    expect_eq(s["end_bytes"], END, "end_bytes")


def test_cuts_are_not_temporary():
    """A mapping cut right after it was made is not a temporary allocation (its block
    lives on); one unmapped whole is."""
    db = profile()
    text = harness.analyze("temporary", "--format=csv", db)
    got = {int(r["line"]): int(r["temporary_allocations"]) for r in csv.DictReader(io.StringIO(text))
           if r["file"].endswith("/mmap.c")}
    L = marks(SRC, "TEMP", "TRIM", "MREMAP_SRC", "ERRNO")
    # (TRIM: what was left of it was unmapped before the next allocation)
    want = {L["TEMP"]: 10, L["TRIM"]: 5, L["MREMAP_SRC"]: 1, L["ERRNO"]: 1,
            harness.line_of(SRC, "void *p = mmap(NULL, n"): 1}
    expect_eq(got, want, "temporary allocations by line")


def test_random_cuts():
    """20,000 random mappings of page ranges and cuts (PROT_NONE mapped over them) that
    overlap one another in every way, by one thread and by four (each cutting the others' mappings): the line's
    live bytes at the end are the pages left mapped, and no free is unmatched."""
    for threads in (1, 4):
        argv = [prog("mmap"), "stress", "20000", str(threads)]
        # (the threads' turns, so what is left mapped, differ from run to run)
        p, files = run_both(argv, expect_rc=0) if threads == 1 else harness.profile(argv, check_rc=0)
        want = int(p.stdout)
        db = one_file(files)
        s = harness.stats(db)
        w = "%d threads: " % threads
        expect_eq((s["unmatched_frees"], s["replaced_allocations"]), (0, 0),
                  w + "unmatched frees, replaced allocations")
        rows = harness.report_rows(db)
        expect_row(rows, SRC, marks(SRC, "STRESS")["STRESS"], w + "stress", end_bytes=want)
        for f in files:
            os.unlink(f)


def test_fork_child_unmaps_the_parents():
    """A forked child's profile starts empty: the parent's mapping, which the child
    unmaps, is not a block of it (nothing recorded), and the parent's file keeps it."""
    p, files = run_both([prog("mmap"), "fork"], env={"MEMPROF_FOLLOW": "all"}, expect_rc=0)
    if len(files) != 2:
        raise AssertionError("expected the parent's and the child's files, got %r" % (files,))
    m = {f: meta(f) for f in files}
    parent = [f for f in files if any(m[g]["ppid"] == m[f]["pid"] for g in files)]
    child = [f for f in files if f not in parent]
    L = marks(SRC, "PARENT", "CHILD")
    map_line = harness.line_of(SRC, "void *p = mmap(NULL, n")  # map(), called at @PARENT
    s = harness.stats(child[0])
    expect_eq((s["allocators"].get("mmap"), s["frees"], s["unmatched_frees"]), (1, 0, 0),
              "child: mmap calls, frees, unmatched frees")
    expect_row(harness.report_rows(child[0]), SRC, L["CHILD"], "child's mapping", allocations=1,
               allocated_bytes=2 * MiB, end_bytes=2 * MiB)
    expect_row(harness.report_rows(parent[0]), SRC, map_line, "parent's mapping", allocations=1,
               allocated_bytes=MiB, end_bytes=MiB)


def test_sampled_profile_maps_exactly():
    check_rows(profile({"MEMPROF_SAMPLE_BYTES": str(4 * MiB)}), sampled=True)


def test_native_stacks_off():
    """MEMPROF_NATIVE=0 in a native program: every block <no stack>, the figures the same."""
    s = harness.stats(profile({"MEMPROF_NATIVE": "0"}))
    expect_eq(s["peak_heap_bytes"], AT_PEAK, "peak_heap_bytes")
    expect_eq(s["end_bytes"], END, "end_bytes")


if __name__ == "__main__":
    harness.run(globals())
