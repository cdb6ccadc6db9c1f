"""C code allocating with malloc under a Python line (item: C extensions). ctypes calls
libc malloc(N_LIBC) and cext_alloc(N_CEXT) (libmpcext.so, which calls malloc) at two
known lines; the blocks are kept to the end. The malloc hook records them with the
Python stack of the calling thread (ctypes has released the GIL by then). With
MEMPROF_NATIVE=1 the same lines are reported, and the stacks of `leaks`/`peak` hold
the native frames (cext_alloc in cext.c, libffi, _ctypes) with the Python frames
spliced in below the eval loop that runs them."""
import json
import os

import harness
from pycommon import cext_lib, line_rows, line_sum, one, prog, pythons, tag

PROG = prog("cmalloc.py")
N_LIBC = 3000017
N_CEXT = 5000011
CTYPES_SLACK = 1024  # ctypes' own small objects at the calling line (argument, result)


def run(py, native):
    env = {"MEMPROF_NATIVE": "1"} if native else None
    p, files = harness.profile([py, PROG, cext_lib()], env=env, check_rc=0)
    harness.expect_eq(p.stdout, b"ok True True\n", tag(py) + " stdout")
    return one(files, tag(py))


def check_lines(py, db):
    w = tag(py)
    rows = harness.report_rows(db)
    for marker, n in (("# L:libc", N_LIBC), ("# L:cext", N_CEXT)):
        line = harness.line_of(PROG, marker)
        line_rows(rows, PROG, line)
        for field in ("allocated_bytes", "peak_bytes", "end_bytes"):
            got = line_sum(rows, PROG, line, field)
            if not n <= got <= n + CTYPES_SLACK:
                raise AssertionError("%s %s %s = %d, want %d + at most %d" % (w, marker, field, got, n, CTYPES_SLACK))
    st = harness.stats(db)
    if st["allocators"].get("malloc", 0) < 2:
        raise AssertionError("%s malloc hook saw nothing: %r" % (w, st["allocators"]))
    harness.expect_eq(st["dropped_events"], 0, w + " dropped")


def test_malloc_from_c_attributed_to_python_line():
    for py in pythons():
        check_lines(py, run(py, native=False))


def find_stack(doc, nbytes):
    for s in doc["stacks"]:
        if s["bytes"] == nbytes and s["blocks"] == 1:
            return s
    raise AssertionError("no stack of exactly %d bytes in one block: %s" % (
        nbytes, [(s["bytes"], s["blocks"]) for s in doc["stacks"][:20]]))


def check_mixed_stack(w, s, marker, first_native):
    """frames innermost first: native frames of the C side, then the Python frame of the
    calling line and its callers."""
    fr = s["frames"]
    for f in fr:
        for k in ("function", "file", "line", "module", "python"):
            if k not in f:
                raise AssertionError("%s frame without %r: %r" % (w, k, f))
    line = harness.line_of(PROG, marker)
    py_idx = [i for i, f in enumerate(fr) if f["python"]]
    if not py_idx:
        raise AssertionError("%s no Python frame: %r" % (w, fr))
    top = fr[py_idx[0]]
    if not (top["file"] == PROG and top["line"] == line and top["function"] == "allocate"):
        raise AssertionError("%s innermost Python frame %r, want %s:%d allocate" % (w, top, PROG, line))
    natives_above = [f for f in fr[:py_idx[0]] if not f["python"]]
    names = [f["function"] for f in natives_above]
    if first_native not in names:
        raise AssertionError("%s no native frame %r above the Python frame: %r" % (w, first_native, names))
    if "ffi_call" not in names:
        raise AssertionError("%s no ffi_call between C and Python: %r" % (w, names))
    # Only the native frames inside the innermost eval-loop activation are unwound (the
    # interpreter's own frames outside it are what the Python frames describe): the
    # outermost frames of the stack are Python frames, down to the <module> frame.
    below = [f["function"] for f in fr[py_idx[-1] + 1:]]
    if below:
        raise AssertionError("%s native frames outside the Python frames: %r" % (w, below[:5]))
    if fr[-1]["function"] != "<module>":
        raise AssertionError("%s the outermost frame is not the module: %r" % (w, fr[-1]))
    return natives_above


def test_native_mixed_stacks():
    for py in pythons():
        w = tag(py) + " MEMPROF_NATIVE=1"
        db = run(py, native=True)
        check_lines(py, db)  # same attribution as without native stacks
        leaks = json.loads(harness.analyze("leaks", "--format=json", "--limit=0", db))
        s = find_stack(leaks, N_CEXT)
        nat = check_mixed_stack(w, s, "# L:cext", "cext_alloc")
        ca = [f for f in nat if f["function"] == "cext_alloc"][0]
        if not (ca["file"].endswith("cext.c") and ca["line"] == harness.line_of(
                harness.HERE + "/python/cext.c", "void *p = malloc(n);")
                and ca["module"].endswith("libmpcext.so")):
            raise AssertionError("%s cext_alloc frame: %r" % (w, ca))
        check_mixed_stack(w, find_stack(leaks, N_LIBC), "# L:libc", "ffi_call")
        # The same blocks are alive at the peak (nothing is freed after them).
        peak = json.loads(harness.analyze("peak", "--format=json", "--limit=0", db))
        check_mixed_stack(w, find_stack(peak, N_CEXT), "# L:cext", "cext_alloc")


def test_cxx_library_through_ctypes():
    """A C++ library loaded with ctypes (RTLD_LOCAL: libstdc++ comes in outside the global
    scope, where memprof's operator new must find it at its first call; it aborted the
    interpreter): 3 x 1 MiB from its operator new at the Python line that called it, one
    kept, on both interpreters."""
    lib = os.path.join(harness.TESTBIN, "native", "libcxxlib.so")
    if not os.path.exists(lib):
        raise harness.Skip("no C++ compiler: %s not built" % lib)
    with open("cxx.py", "w") as f:
        f.write("import ctypes\n"
                "lib = ctypes.CDLL(%r)\n"
                "lib.cxxlib_alloc.restype = ctypes.c_void_p\n"
                "lib.cxxlib_free.argtypes = [ctypes.c_void_p]\n"
                "blocks = [lib.cxxlib_alloc(1 << 20) for _ in range(3)]  # line 5\n"
                "lib.cxxlib_free(blocks[0])\n"
                "print('ok')\n" % lib)
    for py in pythons():
        p, files = harness.profile([py, "cxx.py"], check_rc=0)
        harness.expect_eq(p.stdout, b"ok\n", tag(py) + " stdout")
        rows = harness.report_rows(one(files, tag(py)))
        r = [x for x in line_rows(rows, "cxx.py", 5) if x["allocated_bytes"] >= 3 << 20]
        harness.expect_eq([(x["allocations"] >= 3, x["end_bytes"] >= 2 << 20) for x in r], [(True, True)],
                          tag(py) + " the three MiB at line 5")
        os.unlink(files[0])


if __name__ == "__main__":
    harness.run(globals())
