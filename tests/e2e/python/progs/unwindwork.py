"""Mixed-mode workload for memprof's own unwinder (test_unwind.py): allocations made by C
code at many depths under the eval loop (the json encoder's recursion, sre, zlib,
sqlite3, ctypes calls into a C library), on several threads; then the library is
unloaded (the unwinder stands down) and the work runs again. With the argument "single",
the main thread alone (a profile that is the same from run to run)."""
import ctypes
import json
import re
import sqlite3
import sys
import threading
import zlib

import _ctypes


def nested(d):
    return {"k": nested(d - 1)} if d else [1, "x", 2.5]


def work(n, lib):
    out = []
    for i in range(n):
        out.append(json.dumps({"k": [i, str(i), {"x": i * 1.5}], "deep": nested(i % 40)}))  # L:json
        out.append(re.sub(r"(\d)", r"<\1>", "a%db%d" % (i, i)))
        out.append(zlib.compress(b"x" * (i % 100 + 1)))
        if lib:
            lib.cext_free(lib.cext_alloc(i % 64 + 1))  # L:cext
        if len(out) > 300:
            out.clear()
    c = sqlite3.connect(":memory:")
    c.execute("create table t(x)")
    c.executemany("insert into t values (?)", [(str(i),) for i in range(n)])
    c.close()


lib = ctypes.CDLL(sys.argv[1])
lib.cext_alloc.restype = ctypes.c_void_p
lib.cext_free.argtypes = [ctypes.c_void_p]
ts = [threading.Thread(target=work, args=(2000, lib)) for _ in range(3 if sys.argv[2:] != ["single"] else 0)]
[t.start() for t in ts]
work(2000, lib)
[t.join() for t in ts]
handle = lib._handle
del lib
_ctypes.dlclose(handle)
work(500, None)
print("done")
