"""dlopen/dlclose: allocations made in a library unloaded before exit are still named by
the library's file:line (symbolized through the module map)."""
import os
import shutil

import harness
from harness import expect_eq
from native_common import expect_row, marks, one_file, prog, run_both, src

LIB_A, LIB_B = src("dllib_a.c"), src("dllib_b.c")


def lib(name):
    return prog("lib%s.so" % name)


def test_dlclosed_library_symbolized():
    p, files = run_both([prog("dl"), lib("dllib_a")], expect_rc=0)
    expect_eq(p.stdout, b"dl done\n", "stdout")
    db = one_file(files)
    rows = harness.report_rows(db)
    r = expect_row(rows, LIB_A, marks(LIB_A, "LIB_A")["LIB_A"], "allocation in the unloaded library",
                   allocations=5, allocated_bytes=5000, end_bytes=5000, peak_bytes=5000)
    expect_eq(r["function"], "lib_alloc", "function")


def test_library_loaded_by_relative_name():
    """dlopen("./libdllib_a.so") from the directory that holds it: its frames are named
    by their lines (the file recorded the relative name, which the analyzer could not
    open: the allocations were charged to dl.c's caller line)."""
    shutil.copy(lib("dllib_a"), "libdllib_a.so")
    p, files = run_both([prog("dl"), "./libdllib_a.so"], expect_rc=0)
    db = one_file(files)
    r = expect_row(harness.report_rows(db), LIB_A, marks(LIB_A, "LIB_A")["LIB_A"], "library by relative name",
                   allocations=5, allocated_bytes=5000, end_bytes=5000)
    expect_eq(r["function"], "lib_alloc", "function")


def test_library_loaded_where_another_was_unloaded():
    # B is loaded after A was unloaded, usually at A's address: each allocation must still
    # be named by its own library's line
    p, files = run_both([prog("dl"), lib("dllib_a"), lib("dllib_b")], expect_rc=0)
    db = one_file(files)
    rows = harness.report_rows(db)
    expect_row(rows, LIB_A, marks(LIB_A, "LIB_A")["LIB_A"], "library A", allocations=5, allocated_bytes=5000,
               end_bytes=5000)
    expect_row(rows, LIB_B, marks(LIB_B, "LIB_B")["LIB_B"], "library B (same address: %s)" % p.stderr.strip(),
               allocations=2, allocated_bytes=6000, end_bytes=6000)


if __name__ == "__main__":
    harness.run(globals())
