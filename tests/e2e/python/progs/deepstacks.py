"""Stacks cut short (tests/e2e/python/test_deepstacks.py): Python recursion around the
128-frame limit, taken in turns on one thread (a stack over the limit, then one that fits
exactly, ...), and native recursion below a Python frame (the C json encoder on nested
dicts), deeper than MEMPROF_MAX_DEPTH in mixed mode."""
import json


def deep(n):
    if n == 0:
        return bytearray(20001)  # L:pydeep
    return deep(n - 1)  # L:recurse


def nested(n):
    d = {}
    for _ in range(n):
        d = {"k": d}
    return d


kept = []
for depth in (200, 126, 127, 100, 200, 126):
    kept.append(deep(depth))  # L:loop
text = json.dumps(nested(300))  # L:cdeep
print(len(kept), len(text))
