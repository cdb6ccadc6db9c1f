"""A program that allocates heavily while it holds the loader's lock (inside a
dl_iterate_phdr callback) runs to the end under memprof, and every allocation is
recorded: a thread whose event queue is full waits for the writer only for a while, since
the writer may itself be waiting for that lock."""
import harness
from harness import expect_eq
from native_common import expect_row, marks, one_file, prog, run_both, src

SRC = src("phdr.c")
L = marks(SRC, "PHDR")
N = 1000000


def test_allocations_under_the_loader_lock():
    p, files = run_both([prog("phdr"), str(N)], expect_rc=0, timeout=120)
    expect_eq(p.stdout, b"phdr %d\n" % N, "stdout")
    db = one_file(files)
    rows = harness.report_rows(db)
    expect_row(rows, SRC, L["PHDR"], "allocations inside the callback", allocations=N, allocated_bytes=48 * N,
               end_bytes=0)
    s = harness.stats(db)
    expect_eq(s["dropped_events"], 0, "dropped events")


if __name__ == "__main__":
    harness.run(globals())
