"""dlsym: the C allocator functions looked up in libc's own handle (ctypes'
CDLL("libc.so.6").malloc and .free) are memprof's wrappers, so what they allocate is
recorded and what they free is seen (strings strdup'd through the program's malloc and
freed through libc's free were live for ever); and dlsym still looks from its caller's
object: RTLD_NEXT from a preloaded interposer finds the next getpid (not itself), and
RTLD_DEFAULT from a plugin loaded RTLD_LOCAL finds its own dependency's symbol."""
import harness
from harness import expect_eq
from native_common import expect_row, marks, one_file, prog, run_both, src

SRC = src("dlsym.c")


def test_libc_handle_recorded():
    m = marks(SRC, "DLMALLOC", "DLCALLOC", "DLREALLOC", "STRDUP")
    p, files = run_both([prog("dlsym"), prog("libdlsymplug.so")], expect_rc=0)
    expect_eq(p.stdout, b"plugin 42\ngetpid 1\nkept 1\n", "stdout")
    rows = harness.report_rows(one_file(files))
    expect_row(rows, SRC, m["DLMALLOC"], "libc's malloc", allocations=1, allocated_bytes=100000, end_bytes=100000)
    expect_row(rows, SRC, m["DLCALLOC"], "libc's calloc", allocations=1, allocated_bytes=10000, end_bytes=0)
    expect_row(rows, SRC, m["DLREALLOC"], "libc's realloc", allocations=1, allocated_bytes=50000, end_bytes=50000)
    expect_row(rows, SRC, m["STRDUP"], "strdup freed by libc's free", allocations=20, allocated_bytes=20 * 1001,
               end_bytes=0)


def test_callers_object_kept():
    env = {"LD_PRELOAD": harness.LIB + ":" + prog("libdlsymnext.so")}
    p, files = harness.profile([prog("dlsym"), prog("libdlsymplug.so")], env=env, check_rc=0)
    expect_eq(p.stdout, b"plugin 42\ngetpid 1\nkept 1\n", "stdout with the interposer preloaded after memprof")
    one_file(files)
    env = {"LD_PRELOAD": prog("libdlsymnext.so") + ":" + harness.LIB}
    p, files = harness.profile([prog("dlsym")], env=env, check_rc=0)
    expect_eq(p.stdout, b"getpid 1\nkept 1\n", "stdout with the interposer preloaded before memprof")


if __name__ == "__main__":
    harness.run(globals())
