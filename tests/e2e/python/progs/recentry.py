"""Allocations made by a frame's very entry: RecursionError is raised when the frame
is pushed, before its first instruction (lasti -1), and the error and its message are
allocated then. That frame is not complete, so the stack leaves it out: the deepest
stack holds as many frames of r as the error's traceback (printed second), as CPython's
own frame APIs see it (test_frames.py)."""
import sys
import traceback


def r(n):  # L:rdef
    return r(n + 1)  # L:rcall


sys.setrecursionlimit(100)
caught = depth = 0
for i in range(200):
    try:
        r(0)
    except RecursionError as e:
        caught += 1
        depth = sum(1 for f in traceback.extract_tb(e.__traceback__) if f.name == "r")
sys.setrecursionlimit(1000)
print(caught, depth)
