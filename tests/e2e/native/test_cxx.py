"""C++: operator new/delete (plain, array with a cookie, aligned, nothrow, throwing) at known lines;
and what keeps memprof's own allocator (jemalloc) apart from the program's."""
import os
import subprocess

import harness
from harness import expect_eq
from native_common import MiB, expect_row, marks, one_file, prog, run_both, src

SRC = src("cxx.cpp")
# an exception object from __cxa_allocate_exception: the 128-byte __cxa_refcounted_exception
# header (x86_64 Itanium ABI, libstdc++) + sizeof(std::bad_alloc) (a vtable pointer)
EXCEPTION_BYTES = 128 + 8


def cxx_prog(name):
    """The path of the C++ test program `name` (built only where there is a C++ compiler)."""
    exe = os.path.join(harness.TESTBIN, "native", name)
    if not os.path.exists(exe):
        raise harness.Skip("no C++ compiler: %s not built" % name)
    return exe


def run_cxx(name, stdout):
    """Runs the C++ test program `name` plainly and profiled; returns its profile."""
    p, files = run_both([cxx_prog(name)], expect_rc=0)
    expect_eq(p.stdout, stdout, "stdout")
    return one_file(files)


def test_new_delete():
    check_new_delete("cxx")


def test_new_delete_of_jemalloc():
    """The same program linked with jemalloc, whose operator new and delete replace
    libstdc++'s and never call malloc (nothing of new was recorded): the same figures,
    but for the nothrow new of 2^62 bytes, which jemalloc fails without the bad_alloc
    that libstdc++'s makes and catches."""
    check_new_delete("cxx_jemalloc")


def check_new_delete(name):
    jemalloc = name == "cxx_jemalloc"
    db = run_cxx(name, b"aligned 1 nothrow null bad_alloc 1\n1000 100\n")
    L = marks(SRC, "NEW_ARRAY", "NEW_OBJ", "NEW_COOKIE", "NEW_ALIGNED", "NEW_NOTHROW", "NEW_THROW")
    rows = harness.report_rows(db)
    expect_row(rows, SRC, L["NEW_ARRAY"], "new int[1000]", allocations=1, allocated_bytes=4000, end_bytes=4000,
               peak_bytes=4000)
    # (freed before the peak, which is the vector's last growth below)
    expect_row(rows, SRC, L["NEW_OBJ"], "10 x new Obj (256 B)", allocations=10, allocated_bytes=2560, end_bytes=0,
               peak_bytes=0)
    # 10 x 16 bytes + the 8-byte array cookie of a type with a destructor
    expect_row(rows, SRC, L["NEW_COOKIE"], "new WithDtor[10]", allocations=1, allocated_bytes=168, end_bytes=0,
               peak_bytes=0)
    expect_row(rows, SRC, L["NEW_ALIGNED"], "aligned new", allocations=1, allocated_bytes=128, end_bytes=0,
               peak_bytes=0)
    # a failed new allocates nothing but the bad_alloc exception (libstdc++'s nothrow new
    # calls the throwing one and catches)
    for m in ("NEW_THROW",) if jemalloc else ("NEW_NOTHROW", "NEW_THROW"):
        expect_row(rows, SRC, L[m], m, allocations=1, allocated_bytes=EXCEPTION_BYTES, end_bytes=0)
    # std::vector's growth (4, 8, ... 4096 bytes) and std::string's buffer at the lines
    # that use them, not at the header lines of the templates inlined there
    # (/usr/include/c++/12/bits/new_allocator.h)
    L = marks(SRC, "VECTOR", "STRING")
    expect_row(rows, SRC, L["VECTOR"], "vector growth", allocations=11, allocated_bytes=8188, end_bytes=0,
               peak_bytes=2048 + 4096)
    expect_row(rows, SRC, L["STRING"], "string", allocations=1, allocated_bytes=101, end_bytes=0)
    check_no_header_rows(rows)
    s = harness.stats(db)
    expect_eq((s["allocations"], s["frees"], s["peak_heap_bytes"], s["end_bytes"], s["unmatched_frees"]),
              (27 - jemalloc, 26 - jemalloc, 4000 + 2048 + 4096, 4000, 0),
              "(allocations, frees, peak, end, unmatched frees)")
    expect_eq(s["allocators"], {"malloc": 26 - jemalloc, "aligned_alloc": 1}, "allocations by function")


def test_optimized_start_frame():
    """cxx.cpp built with -O2: _start lies in a hole between the address ranges of a unit
    of libstdc++'s templates; libdw answered that unit's last line for it (every stack's
    root read `_start (/usr/include/c++/12/bits/stl_vector.h:733)`). No line instead; the
    vector's and string's lines as at -O0."""
    db = run_cxx("cxxo2", b"aligned 1 nothrow null bad_alloc 1\n1000 100\n")
    out = harness.analyze("flamegraph", "--format=folded", db)
    starts = sorted(set(l.split(";")[0] for l in out.splitlines()))
    expect_eq(starts, ["_start (cxxo2)"], "the outermost frame")
    rows = harness.report_rows(db)
    L = marks(SRC, "VECTOR", "STRING")
    expect_row(rows, SRC, L["VECTOR"], "vector growth (-O2)", allocations=11, allocated_bytes=8188, end_bytes=0)
    expect_row(rows, SRC, L["STRING"], "string (-O2)", allocations=1, allocated_bytes=101, end_bytes=0)
    check_no_header_rows(rows)


def check_no_header_rows(rows):
    heads = [r for r in rows if "/include/c++/" in r["file"]]
    if heads:
        raise AssertionError("rows at the standard library's headers: %r" % heads)


def test_new_through_a_library():
    """libstdc++ loaded only as a C++ library's dependency: operator new is the program's
    (libstdc++'s, over glibc's malloc), recorded, never memprof's private allocator."""
    dyn = subprocess.run(["readelf", "-d", cxx_prog("cxxindirect")], capture_output=True, text=True,
                         check=True).stdout
    if "libstdc++" in dyn:
        raise AssertionError("cxxindirect links libstdc++ itself: the case is not the one meant")
    db = run_cxx("cxxindirect", b"2 3\n")
    lib = src("cxxlib.cpp")
    rows = harness.report_rows(db)
    expect_row(rows, lib, marks(lib, "CXXLIB_NEW")["CXXLIB_NEW"], "new char[1 MiB] x 3", allocations=3,
               allocated_bytes=3 * MiB, peak_bytes=3 * MiB, end_bytes=MiB)
    s = harness.stats(db)
    expect_eq(s["unmatched_frees"], 0, "unmatched frees")


def test_cxx_library_loaded_later():
    """A C program that dlopens a C++ library RTLD_LOCAL: libstdc++ arrives then, outside
    the global scope, where memprof's operator new (which the library's calls bind to,
    the preloaded library being searched first) finds it at its first call (it aborted
    the program, finding no definition at start-up). The library's news are recorded once
    each, at its line."""
    lib = cxx_prog("libcxxlib.so")
    p, files = run_both([prog("dlcxx"), lib], expect_rc=0)
    expect_eq(p.stdout, b"2 3\n", "stdout")
    db = one_file(files)
    lsrc = src("cxxlib.cpp")
    expect_row(harness.report_rows(db), lsrc, marks(lsrc, "CXXLIB_NEW")["CXXLIB_NEW"], "new char[1 MiB] x 3",
               allocations=3, allocated_bytes=3 * MiB, end_bytes=MiB)
    s = harness.stats(db)
    expect_eq((s["unmatched_frees"], s["replaced_allocations"]), (0, 0), "(unmatched frees, reused live addresses)")


def test_program_with_its_own_jemalloc():
    """A program linked with jemalloc: recorded, and its jemalloc keeps its own settings
    (the output, which prints two of them, is the same as without memprof). MALLOC_CONF
    is the program's: memprof's private jemalloc neither takes its settings nor complains
    about them (an unknown option is reported once, by the program's jemalloc)."""
    exe = prog("jemalloc_user")
    jsrc = src("jemalloc_user.c")
    # (an empty MALLOC_CONF: jemalloc's defaults, whatever the caller's environment says)
    for conf, want in (("", b"tcache 1"), ("narenas:3,tcache:false,bogus_option:1", b"narenas 3 tcache 0")):
        p, files = run_both([exe], env={"MALLOC_CONF": conf}, expect_rc=0)
        if not p.stdout.startswith(b"narenas ") or want not in p.stdout:
            raise AssertionError("MALLOC_CONF=%s: unexpected output %r" % (conf, p.stdout))
        if conf:
            expect_eq(p.stderr.count(b"bogus_option"), 1, "MALLOC_CONF=%s: jemalloc's complaints" % conf)
        db = one_file(files)
        expect_row(harness.report_rows(db), jsrc, marks(jsrc, "JE_MALLOC")["JE_MALLOC"], "3 x malloc(1 MiB)",
                   allocations=3, allocated_bytes=3 * MiB, peak_bytes=3 * MiB, end_bytes=MiB)


def test_exports():
    """libmemprof.so exports its hooks and nothing else: no allocator function of the
    jemalloc it uses for itself can be bound by the program."""
    out = subprocess.run(["nm", "-D", "--defined-only", harness.LIB], capture_output=True, text=True, check=True)
    names = sorted(line.split()[-1] for line in out.stdout.splitlines() if line.strip())
    # (Py_Initialize*: forwarded to the Python library, for a program embedding Python
    # that initializes it again: test_embed)
    hooks = ["Py_Initialize", "Py_InitializeEx", "Py_InitializeFromConfig", "_Exit", "_exit", "aligned_alloc", "calloc", "close", "close_range", "closefrom", "dlclose", "dlsym", "dup2", "dup3", "execl", "execle", "execlp", "execv", "execve",
             "execvp", "execvpe", "fexecve", "free", "kill", "malloc", "memalign", "mmap", "mmap64", "mremap", "munmap", "pipe", "pipe2", "posix_memalign", "pthread_exit",
             "pvalloc", "quick_exit", "raise", "realloc", "reallocarray", "sigaction", "sigaltstack", "signal", "valloc",
             "__sysv_signal", "sysv_signal", "sigset", "bsd_signal", "ssignal"]  # (signal's other names)
    # operator new and delete, the twenty of the Itanium ABI (hooks_cxx.c)
    cxx = ["_Zda" + s for s in ("Pv", "PvRKSt9nothrow_t", "PvSt11align_val_t", "PvSt11align_val_tRKSt9nothrow_t", "Pvm",
                                "PvmSt11align_val_t")]
    cxx += ["_Zdl" + x[4:] for x in cxx]
    cxx += ["_Zn%sm%s" % (k, s) for k in "aw" for s in ("", "RKSt9nothrow_t", "St11align_val_t",
                                                         "St11align_val_tRKSt9nothrow_t")]
    expect_eq(names, sorted(hooks + cxx), "libmemprof.so's exported symbols")


if __name__ == "__main__":
    harness.run(globals())
