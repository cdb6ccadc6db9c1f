"""Real library work for the tracemalloc comparison: build a structure, json.dumps it
(C encoder), pretty-print part of it (pure-Python encoder), encode the text to bytes
and those to base64, json.loads the text back: the peak is right after that (loads
makes the largest object, and leaves no temporaries); then keep only what loads made.
With --tracemalloc, tracemalloc starts before anything else runs and the program prints
(as JSON) the traced memory and the top lines of a snapshot at the peak and at the end."""
import sys
import tracemalloc  # imported in both modes: the modules it pulls in (re, ...) are then
                    # loaded before tracing starts in both, not traced in one only

TM = sys.argv[1:] == ["--tracemalloc"]
if TM:
    tracemalloc.start()

import base64
import json

N = 60000
out = {}


def build(n):
    return [{"id": i, "name": "item-%d" % i, "tags": ["t%d" % (i % 7), "x" * (i % 5)], "v": i * 0.5}  # L:build
            for i in range(n)]


def checkpoint(what):
    if TM:
        current, peak = tracemalloc.get_traced_memory()
        snap = tracemalloc.take_snapshot()
        top = [(s.traceback[0].filename, s.traceback[0].lineno, s.size, s.count)
               for s in snap.statistics("lineno")[:10]]
        out[what] = {"current": current, "peak": peak, "top": top}


def main():
    data = build(N)
    text = json.dumps(data)  # L:dumps
    pretty = json.dumps(data[: N // 4], indent=1)  # L:pretty
    blob = text.encode()  # L:blob
    b64 = base64.b64encode(blob)
    loaded = json.loads(text)  # L:loads
    checkpoint("peak")
    del data, text, pretty, blob, b64
    return loaded


kept = main()
checkpoint("end")
if TM:
    print(json.dumps(out))
else:
    print(len(kept))
