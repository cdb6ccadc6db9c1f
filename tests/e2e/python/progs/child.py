"""Run by mp.py through subprocess: allocates at a known line, prints its pid."""
import os

CHILD_N = 5000001
buf = bytearray(CHILD_N)  # L:child
print(os.getpid())
