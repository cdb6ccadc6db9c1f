"""A C signal handler (cext.c, cext_many_start) maps and unmaps 128 MiB + 4 KiB N times
in a row while the program's thread is inside memprof (its imports, slowed by the
test): 2N events kept aside at once. Prints how many mappings the handler made (-1: it
did not run). Arguments: cext's path, the delay in ms, N."""
import ctypes
import sys

cext = ctypes.CDLL(sys.argv[1])
cext.cext_many_join.restype = ctypes.c_long
cext.cext_many_start(int(sys.argv[2]), int(sys.argv[3]))
import argparse, asyncio, decimal, email.mime.text, http.client, json, logging, xml.dom.minidom  # noqa
print("mapped", cext.cext_many_join())
