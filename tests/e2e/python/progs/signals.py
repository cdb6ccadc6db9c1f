"""Ends by a signal: `self-term` (SIGTERM to itself), `segv` (a NULL read through
ctypes), `abort` (os.abort), `handler` (SIGTERM caught by a Python handler, which exits
with status 3), `interrupt` (SIGINT to itself: an uncaught KeyboardInterrupt, after which
CPython finalizes and kills itself with SIGINT), `imports` (imports modules, then sleeps:
the test sends SIGTERM while the imports run). The block allocated first must be in the
profile in every case."""
import os
import signal
import sys
import time

block = bytearray(7000001)  # L:block
print("ready", flush=True)
how = sys.argv[1]
if how == "handler":
    def on_term(signum, frame):
        print("handled", signum, flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, on_term)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
elif how == "self-term":
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
elif how == "interrupt":
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)
elif how == "imports":
    import argparse, asyncio, decimal, email.mime.text, http.client, json, logging, xml.dom.minidom
    print("imported", flush=True)
    time.sleep(30)
elif how == "segv":
    import ctypes
    ctypes.string_at(0)
elif how == "abort":
    os.abort()
print("not reached")
