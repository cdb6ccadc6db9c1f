"""Code objects that die and whose memory is reused: K functions compiled one after the
other from generated source (file name gen.py), each with its first line at 1 and its
allocation at line k + 2, each called once and freed before the next is made.
`codereuse.py stmts`: k statements before the allocation (the bytecode grows with k);
`codereuse.py blank`: k blank lines before it (the same bytecode each time, only the
line table differs). A profiler that identifies code objects by their address (or by
other pointers that die with them) gives later functions the lines of an earlier one."""
import gc
import sys

K = 300
MODE = sys.argv[1]
kept = []


def make(k):
    body = "    x = 1\n" * k if MODE == "stmts" else "\n" * k
    src = "def f():\n" + body + "    return bytearray(%d)\n" % (1000 + k)
    ns = {}
    exec(compile(src, "gen.py", "exec"), ns)
    return ns["f"]


for k in range(K):
    f = make(k)
    kept.append(f())
    del f
    gc.collect()
print(len(kept))
