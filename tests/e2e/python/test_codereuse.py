"""Code objects whose memory is reused (progs/codereuse.py): 300 generated functions,
each freed before the next is compiled, each allocating one bytearray(1000 + k) at its
line k + 2 of gen.py. Every line must show exactly its own bytearray: 2 blocks (object,
buffer), 56 + 1000 + k + 1 bytes. Both when the bytecode differs (k statements) and
when only the line table does (k blank lines)."""
import harness
from pycommon import one, prog, pythons, tag

PROG = prog("codereuse.py")
K = 300


def check(py, mode):
    w = "%s %s" % (tag(py), mode)
    p, files = harness.profile([py, PROG, mode], check_rc=0)
    harness.expect_eq(p.stdout, b"%d\n" % K, w + " stdout")
    # (line 1 is the generated module's `def f():`, making 300 function objects)
    rows = [r for r in harness.report_rows(one(files, w)) if r["file"] == "gen.py" and r["line"] > 1]
    got = {}
    for r in rows:
        got[r["line"]] = got.get(r["line"], (0, 0))
        got[r["line"]] = (got[r["line"]][0] + r["allocated_bytes"], got[r["line"]][1] + r["allocations"])
    want = {k + 2: (56 + 1000 + k + 1, 2) for k in range(K)}
    wrong = sorted((l, got.get(l), want.get(l)) for l in set(got) | set(want) if got.get(l) != want.get(l))
    if wrong:
        raise AssertionError("%s %d of %d lines of gen.py wrong (line, memprof (bytes, blocks), "
                             "want): %s" % (w, len(wrong), K, wrong[:8]))


def test_code_reuse_stmts():
    for py in pythons():
        check(py, "stmts")


def test_code_reuse_blank_lines():
    for py in pythons():
        check(py, "blank")


if __name__ == "__main__":
    harness.run(globals())
