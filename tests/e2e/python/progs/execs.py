"""A Python program that does real work, then execs another Python program (os.execv):
both profiles must be kept. argv[1] = "first" or "second"."""
import os
import sys

if sys.argv[1] == "first":
    kept = bytearray(5_000_000)  # L:first
    sys.stdout.write("first\n")
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, __file__, "second"])
else:
    kept = bytearray(7_000_000)  # L:second
    print("second")
