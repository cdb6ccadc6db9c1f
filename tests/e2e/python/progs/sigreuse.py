"""A C signal handler (cext.c, cext_reuse_start) maps and unmaps 128 MiB + 4 KiB while
the program's thread is inside memprof (its imports, slowed by the test), and another
thread of cext.c then maps as much at the same addresses and keeps them to the end.
Prints whether the addresses were the same (1), not (0), or the handler did not run (-1)."""
import ctypes
import sys

cext = ctypes.CDLL(sys.argv[1])
cext.cext_reuse_start(int(sys.argv[2]))
import argparse, asyncio, decimal, email.mime.text, http.client, json, logging, xml.dom.minidom  # noqa
print("reused", cext.cext_reuse_join())
