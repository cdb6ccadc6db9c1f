"""Allocations made while a frame is still in its prologue, by code that frame did not
call: the cell MAKE_CELL creates in with_cell's prologue lets the garbage collector run
(threshold 1), which runs D.__del__ of the cycle mk() left behind. with_cell's frame is
not complete yet, so the stack leaves it out: the bytearray's parent is the calling
line, with no with_cell frame between (test_frames.py)."""
import gc


class D:
    def __del__(self):
        bytearray(54321)  # L:del


def mk():
    a = D()
    a.self = a


def with_cell(n):  # L:celldef
    x = n

    def inner():
        return x
    return inner


gc.collect()
gc.set_threshold(1, 1000, 1000)
for i in range(1000):
    mk()
    with_cell(i)  # L:call
gc.set_threshold(700, 10, 10)
print("done")
