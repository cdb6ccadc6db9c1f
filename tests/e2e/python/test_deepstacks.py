"""Stacks cut short, on both interpreters and in Python and mixed mode (progs/
deepstacks.py). deep(n) has n + 1 frames of its own under <module>: 128 frames in all for
n = 126 (whole, no marker), 129 and more for n = 127 and 200 (the innermost 128 frames,
then the truncation marker); the depths alternate on one thread, so a stack that fits
right after one cut short (and the reverse) is checked too. In mixed mode the C json
encoder's recursion under json.dumps is deeper than MEMPROF_MAX_DEPTH: its native frames
hang from the marker below the Python frames."""
import json

import harness
from pycommon import one, prog, pythons, tag

PROG = prog("deepstacks.py")
MARKER = "[frames not recorded]"


def stacks(db):
    return json.loads(harness.analyze("leaks", "--format=json", "--limit=0", db))["stacks"]


def check(py, native):
    w = "%s %s" % (tag(py), "mixed" if native else "python")
    p, files = harness.profile([py, PROG], env={"MEMPROF_NATIVE": "1" if native else "0"}, check_rc=0)
    harness.expect_eq(p.stdout, b"6 %d\n" % (300 * 7 + 2), w + " stdout")
    db = one(files, w)
    pydeep, recurse, loop = (harness.line_of(PROG, "# L:" + m) for m in ("pydeep", "recurse", "loop"))
    by_frames = {}  # Python frames (and marker) -> blocks (in mixed mode a bytearray's two
    for s in stacks(db):  # blocks have different native frames)
        fr = [f for f in s["frames"] if f["python"] or f.get("truncated")]
        if fr and (fr[0]["function"], fr[0]["line"]) == ("deep", pydeep):
            key = tuple((f["function"], f["line"]) for f in fr)
            by_frames[key] = by_frames.get(key, 0) + s["blocks"]
    got = [(blocks, list(key)) for key, blocks in by_frames.items()]
    inner = [("deep", pydeep)] + [("deep", recurse)] * 127
    # blocks: a bytearray is two (the object and its buffer)
    want = sorted([(4, inner[:127] + [("<module>", loop)]), (2, inner[:101] + [("<module>", loop)]),
                   (6, inner + [(MARKER, 0)])])
    summary = lambda stacks: [(blocks, len(fr), fr[-1], fr == ref) for (blocks, fr), (_, ref) in zip(stacks, want)]
    harness.expect_eq(summary(sorted(got)) if len(got) == len(want) else got, summary(want),
                      w + " the stacks of deep(n) (blocks, frames, outermost, all as expected): whole up to 128"
                          " frames, else the innermost 128 and the marker")
    if not native:
        return
    # json.dumps(nested(300)): the encoder's chunks are freed by then; the allocations
    # made deep in the C recursion are in the flame graph of everything allocated
    folded = harness.analyze("flamegraph", "--format=folded", "--metric=allocated", db).splitlines()
    cut = [l for l in folded if ";" + MARKER + ";" in l and "json/encoder.py" in l.split(";" + MARKER)[0]]
    if not cut:
        raise AssertionError("%s: no stack with the marker between the json encoder's Python frames and the "
                             "native recursion: %s" % (w, [l for l in folded if "encoder.py" in l][:5]))
    below = cut[0].split(";" + MARKER + ";")[1].rsplit(" ", 1)[0].split(";")
    harness.expect_eq(len(below) >= 64, True, w + " native frames kept below the marker (%d)" % len(below))


def test_deep_stacks():
    for py in pythons():
        for native in (False, True):
            check(py, native)


if __name__ == "__main__":
    harness.run(globals())
