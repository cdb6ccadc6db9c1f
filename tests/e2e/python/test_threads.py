"""Threads, on both interpreters. progs/threads.py: four threading.Threads started
together (a barrier), each appending N bytearray(1000) to a list it keeps, at its own
line, and calling libc malloc(SIZES[i]) M times at another line of its own — with the
GIL released (ctypes), so the four threads run those mallocs truly concurrently and the
hook must use the calling thread's Python stack, not the GIL holder's; and calling a C
loop of 20000 malloc/free (libmpcext.so) at a third line, also without the GIL. Then a pthread
created in C (libmpcext.so) calls a Python callback N_C times (ctypes takes the GIL
with PyGILState_Ensure): those allocations belong to the callback's line."""
import harness
from pycommon import cext_lib, line_rows, line_sum, one, prog, pythons, tag

PROG = prog("threads.py")
N = 20000
M = 50
SIZES = [100003, 200003, 300007, 400009]
N_C = 3000
M_C = 20000
C_SIZES = [1111, 2222, 3333, 4444]
BA1000 = 56 + 1001  # sys.getsizeof(bytearray(1000)) on 3.11: object + buffer (+ NUL)
BA777 = 56 + 778


def check(py):
    w = tag(py)
    p, files = harness.profile([py, PROG, cext_lib()], check_rc=0)
    harness.expect_eq(p.stdout, b"done 0 %d %d\n" % (4 * N, N_C), w + " stdout")
    db = one(files, w)
    rows = harness.report_rows(db)
    st = harness.stats(db)
    harness.expect_eq(st["dropped_events"], 0, w + " dropped")
    if st["threads"] < 6:  # main, 4 Python threads, the C thread
        raise AssertionError("%s threads: %d" % (w, st["threads"]))
    for i in range(4):
        line = harness.line_of(PROG, "# L:t%d" % i)
        rs = line_rows(rows, PROG, line)
        harness.expect_eq(sorted(set(r["function"] for r in rs)), ["t%d" % i], w + " function at t%d" % i)
        n = line_sum(rows, PROG, line, "allocations")
        # 2 blocks per bytearray (object, buffer) + the list's resizes (< 100 for 20k
        # appends with ~1/8 over-allocation).
        if not 2 * N <= n <= 2 * N + 200:
            raise AssertionError("%s t%d allocations %d, want [%d, %d]" % (w, i, n, 2 * N, 2 * N + 200))
        # the bytearrays, plus the list: at most 8 bytes a pointer with 1/8 growth at
        # the end, and the sum of all reallocs (geometric: < 12x the final size) in
        # allocated. One misattributed bytearray of another thread changes nothing
        # visible here, but a thread's whole line would double: see the malloc lines.
        for field, hi in (("end_bytes", N * (BA1000 + 10)), ("peak_bytes", N * (BA1000 + 10)),
                          ("allocated_bytes", N * (BA1000 + 8 * 12))):
            got = line_sum(rows, PROG, line, field)
            if not N * BA1000 <= got <= hi:
                raise AssertionError("%s t%d %s %d, want [%d, %d]" % (w, i, field, got, N * BA1000, hi))
    for i, size in enumerate(SIZES):
        line = harness.line_of(PROG, "# L:m%d" % i)
        rs = line_rows(rows, PROG, line)
        harness.expect_eq(sorted(set(r["function"] for r in rs)), ["t%d" % i], w + " function at m%d" % i)
        got = line_sum(rows, PROG, line, "allocated_bytes")
        # M blocks of exactly this thread's size, plus ctypes' small objects (< 200
        # bytes a call in 3.11, 212 in 3.12). Any malloc of another thread attributed
        # here adds ≥ 100003.
        if not M * size <= got <= M * size + M * 400:
            raise AssertionError("%s m%d allocated %d, want %d + at most %d" % (w, i, got, M * size, M * 400))
        if line_sum(rows, PROG, line, "end_bytes") < M * size:
            raise AssertionError("%s m%d end bytes %d" % (w, i, line_sum(rows, PROG, line, "end_bytes")))
    for i, size in enumerate(C_SIZES):
        # malloc/free loops in C without the GIL (cext_alloc_many), overlapping the other
        # threads' Python code: every block at the calling thread's line, none elsewhere.
        line = harness.line_of(PROG, "# L:c%d" % i)
        rs = line_rows(rows, PROG, line)
        harness.expect_eq(sorted(set(r["function"] for r in rs)), ["t%d" % i], w + " function at c%d" % i)
        got = line_sum(rows, PROG, line, "allocated_bytes")
        n = line_sum(rows, PROG, line, "allocations")
        if not M_C * size <= got <= M_C * size + 1024 or not M_C <= n <= M_C + 10:
            raise AssertionError("%s c%d: %d bytes in %d blocks, want %d in %d" % (w, i, got, n, M_C * size, M_C))
        # every C block freed; the line's Python objects (the call's argument tuple, 56
        # bytes) may be live at the end: a tuple freed into CPython's free list stays
        # allocated, and whether the list had room depends on how the threads ran
        end = line_sum(rows, PROG, line, "end_bytes")
        if not 0 <= end < size:
            raise AssertionError("%s c%d: %d bytes live at the end, want less than one C block (%d)" % (
                w, i, end, size))
    # The C thread's callback line: N_C bytearray(777), 2 blocks each, plus the list.
    line = harness.line_of(PROG, "# L:ccb")
    rs = line_rows(rows, PROG, line)
    harness.expect_eq(sorted(set(r["function"] for r in rs)), ["callback"], w + " function at ccb")
    n = line_sum(rows, PROG, line, "allocations")
    if not 2 * N_C <= n <= 2 * N_C + 100:
        raise AssertionError("%s callback allocations %d" % (w, n))
    end = line_sum(rows, PROG, line, "end_bytes")
    if not N_C * BA777 <= end <= N_C * (BA777 + 10):
        raise AssertionError("%s callback end bytes %d, want ≈ %d" % (w, end, N_C * BA777))


def test_threads_both_pythons():
    for py in pythons():
        check(py)


def test_many_threads_counted_once():
    """32 threads that allocate and end: `threads` is 33 (they and the main thread). A
    thread that allocates after memprof saw it end (in a thread-exit destructor) gets a
    second state and row with the same tid: counted twice before (122-125 for 65
    threads)."""
    code = ("import threading\n"
            "bar = threading.Barrier(33)\n"
            "keep = [None] * 32\n"
            "def work(i):\n"
            "    x = [bytearray(1000) for _ in range(2000)]\n"
            "    bar.wait()\n"
            "    keep[i] = x[:1000]\n"
            "ts = [threading.Thread(target=work, args=(i,)) for i in range(32)]\n"
            "for t in ts: t.start()\n"
            "bar.wait()\n"
            "for t in ts: t.join()\n")
    for py in pythons():
        p, files = harness.profile([py, "-c", code], check_rc=0)
        harness.expect_eq(harness.stats(one(files, tag(py)))["threads"], 33, "%s threads" % tag(py))


if __name__ == "__main__":
    harness.run(globals())
