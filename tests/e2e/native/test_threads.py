"""Threads: per-line counts from several threads; a stress run where every block is freed
by another thread than the one that allocated it; bursts with quiet spells between them."""
import csv
import io

import harness
from harness import expect_eq
from native_common import MiB, expect_row, marks, one_file, prog, run_both, src

SRC = src("threads.c")
LINES_N = 1000
SHARED_N = 500
KEPT_PER_THREAD = LINES_N // 100


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_lines():
    p, files = run_both([prog("threads"), "lines"], expect_rc=0)
    expect_eq(p.stdout, b"lines done\n", "stdout")
    db = one_file(files)
    L = marks(SRC, "T0", "T1", "T2", "T3", "SHARED", "MAIN_PEAK")
    rows = harness.report_rows(db)
    kept = 0
    for i in range(4):
        size = (i + 1) * 100
        kept += KEPT_PER_THREAD * size
        # the global peak is the 8 MiB block, allocated after the threads ended: then only
        # the kept blocks of each thread are alive
        expect_row(rows, SRC, L["T%d" % i], "thread %d" % i, allocations=LINES_N, allocated_bytes=LINES_N * size,
                   end_bytes=KEPT_PER_THREAD * size, peak_bytes=KEPT_PER_THREAD * size)
    expect_row(rows, SRC, L["SHARED"], "line shared by 4 threads", allocations=4 * SHARED_N,
               allocated_bytes=4 * SHARED_N * 64, end_bytes=0, peak_bytes=0)
    expect_row(rows, SRC, L["MAIN_PEAK"], "main after join", allocations=1, allocated_bytes=8 * MiB,
               end_bytes=0, peak_bytes=8 * MiB)
    mine = set(L.values())
    others = [r for r in rows if not (r["file"].endswith("/threads.c") and r["line"] in mine)]
    # the only other allocations are glibc's thread descriptors, made inside pthread_create
    create = harness.line_of(SRC, "pthread_create(&th[i], NULL, fn")
    for r in others:
        if not (r["file"].endswith("/threads.c") and r["line"] == create):
            raise AssertionError("unexpected row %r" % r)
    s = harness.stats(db)
    other_peak = sum(r["peak_bytes"] for r in others)
    expect_eq(s["peak_heap_bytes"], 8 * MiB + kept + other_peak, "peak_heap_bytes")
    expect_eq(s["allocations"], 4 * LINES_N + 4 * SHARED_N + 1 + sum(r["allocations"] for r in others), "allocations")
    expect_eq(s["end_bytes"], kept + sum(r["end_bytes"] for r in others), "end_bytes")
    expect_eq(s["threads"], 5, "threads")
    expect_eq(s["unmatched_frees"], 0, "unmatched_frees")
    expect_eq(s["dropped_events"], 0, "dropped_events")


def stress_size(t, i):
    return 16 + ((t * 7 + i) % 64) * 8


def test_stress_cross_thread_frees():
    # The blocks of events queued for the writer, all threads together: at most 10 plus
    # two a thread (preload/thread.c, THREAD_MAX_QUEUED), 26 blocks of 64 KiB and a header
    # (1.7 MB) here; 21-24 measured, with and without other load on the machine. Threads
    # stop waiting when the writer consumes nothing for ~500 ms, so a stalled writer can
    # let a few more in: the limit leaves room for 20. Without the bound across threads
    # each thread queued up to 9: 68-69 blocks, 4.4-4.5 MB.
    stress(8, 1000000, 3 * MiB)


def test_stress_64_threads():
    """64 threads allocating at once on this machine's 2 cores: the bound on queued
    blocks holds (138 blocks, 8.6 MiB; 8.07 MiB measured) and nothing is lost. Waiting
    threads used to poll (a 50 us sleep, then a wake of the writer): 4 million context
    switches starved the writer until the threads gave up waiting (queue peaks of 43-125
    MiB, 16-34 s for a 0.2 s program)."""
    stress(64, 250000, 12 * MiB)


def stress(T, N, queue_max):
    # baseline: same program, same threads, no allocation loop (glibc's own thread set-up)
    p0, f0 = run_both([prog("threads"), "stress", "0", str(T)], expect_rc=0)
    base = harness.stats(one_file(f0))
    p, files = run_both([prog("threads"), "stress", str(N), str(T)], expect_rc=0, timeout=400)
    expect_eq(p.stdout, b"stress done %d x %d\n" % (N, T), "stdout")
    db = one_file(files)
    s = harness.stats(db)
    total = 0
    # sum over i of 16 + ((7t + i) % 64) * 8: N // 64 full cycles plus a partial one
    for t in range(T):
        full, rest = divmod(N, 64)
        total += full * sum(16 + k * 8 for k in range(64)) + sum(stress_size(t, i) for i in range(rest))
    # each thread's slots are mapped (recorded: whole pages, never unmapped), a page in
    # the baseline
    pages = lambda n: (n + 4095) // 4096 * 4096
    slots = T * (pages(8 * N) - pages(8))
    expect_eq(s["allocations"], base["allocations"] + T * N, "allocations")
    expect_eq(s["frees"], base["frees"] + T * N, "frees")
    expect_eq(s["allocated_bytes"], base["allocated_bytes"] + total + slots, "allocated_bytes")
    expect_eq(s["end_bytes"], base["end_bytes"] + slots, "end_bytes")
    expect_eq(s["leaked_bytes"], base["leaked_bytes"] + slots, "leaked_bytes")
    expect_eq(s["unmatched_frees"], 0, "unmatched_frees")
    expect_eq(s["replaced_allocations"], 0, "replaced_allocations (alloc of a live address)")
    expect_eq(s["dropped_events"], 0, "dropped_events")
    expect_eq(s["threads"], T + 1, "threads")
    expect_eq(s["status"], "complete", "status")
    q = s["queued_bytes_peak"]
    if not 64 * 1024 <= q <= queue_max:
        raise AssertionError("%d threads: queued_bytes_peak %d: want 64 KiB to %d" % (T, q, queue_max))
    L = marks(SRC, "STRESS_MALLOC")
    rows = harness.report_rows(db)
    expect_row(rows, SRC, L["STRESS_MALLOC"], "stress malloc", allocations=T * N, allocated_bytes=total, end_bytes=0)


def test_short_threads_keep_the_unwinder():
    """2,000 threads one after the other, each one malloc and free: a thread hands its
    caches over when it ends, so every thread's stack is unwound by memprof's unwinder
    (MEMPROF_CHECK_UNWIND counts them), none by libunwind, which maps and fills a trace
    cache of 256 KiB for each thread it unwinds (before: 686 of 2,001 stacks, the
    threads started while 64 ended ones waited for the writer to reap them, and 38 page
    faults a thread). Every allocation is at @SHORT."""
    n = 2000
    p, files = harness.profile([prog("threads"), "short", str(n)], env={"MEMPROF_CHECK_UNWIND": "1"})
    expect_eq((p.returncode, p.stdout), (0, b"short done %d\n" % n), "status and stdout")
    line = [l for l in p.stderr.decode().splitlines() if l.startswith("memprof: unwinder check:")]
    expect_eq(len(line), 1, "the unwinder check's line: %r" % p.stderr)
    stacks, answered = [int(w.replace(",", "")) for w in line[0].split() if w.replace(",", "").isdigit()][:2]
    expect_eq((stacks >= n, answered), (True, stacks), "stacks answered by memprof's unwinder: %s" % line[0])
    rows = harness.report_rows(one_file(files))
    expect_row(rows, SRC, marks(SRC, "SHORT")["SHORT"], "short", allocations=n, allocated_bytes=64 * n, end_bytes=0)


def test_freed_by_a_key_destructor_is_temporary():
    """8 threads, each keeps malloc(666) as its thread-specific value and ends: the key's
    destructor frees it after memprof saw the thread end (its free is on a second thread
    row, same tid). Nothing was allocated in between: each is temporary (heaptrack: 8),
    and the 8 threads are 8 (+ main)."""
    p, files = run_both([prog("threads"), "keyed", "8"], expect_rc=0)
    db = one_file(files)
    line = marks(SRC, "KEYED")["KEYED"]
    rows = [r for r in csv_rows(harness.analyze("temporary", "--format=csv", db)) if r["line"] == str(line)]
    expect_eq([(r["temporary_allocations"], r["temporary_bytes"], r["allocations"]) for r in rows],
              [("8", str(8 * 666), "8")], "temporary at @KEYED")
    expect_eq(harness.stats(db)["threads"], 9, "threads")


def burst_size(t, r, i):
    return 8 + ((t + r * 3 + i) % 32) * 16


def test_bursts():
    # Busy threads share the writer's buffer budget, and a buffer left quiet for a flush
    # interval shrinks: bursts of 300,000 allocations per thread (about 1 MiB encoded),
    # then quiet for five flush intervals, three times over. Every event must arrive.
    T, N, R, QUIET = 6, 300000, 3, 100
    env = {"MEMPROF_FLUSH_MS": "20"}
    p, files = run_both([prog("threads"), "bursts", str(N), str(R), str(T), str(QUIET)], env=env, expect_rc=0)
    expect_eq(p.stdout, b"bursts done\n", "stdout")
    db = one_file(files)
    total = sum(burst_size(t, r, i) for t in range(T) for r in range(R) for i in range(N))
    L = marks(SRC, "BURST")
    rows = harness.report_rows(db)
    r = expect_row(rows, SRC, L["BURST"], "burst malloc", allocations=T * N * R, allocated_bytes=total,
                   end_bytes=0)
    # at the peak each thread has at most its one block alive
    if r["peak_bytes"] > T * burst_size(0, 0, 31):
        raise AssertionError("burst peak_bytes %d > %d" % (r["peak_bytes"], T * burst_size(0, 0, 31)))
    s = harness.stats(db)
    expect_eq(s["unmatched_frees"], 0, "unmatched_frees")
    expect_eq(s["dropped_events"], 0, "dropped_events")
    expect_eq(s["threads"], T + 1, "threads")


if __name__ == "__main__":
    harness.run(globals())
