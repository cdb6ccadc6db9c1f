"""Runs a child through subprocess (a vfork child that execs), keeps 3 MiB, and dies by
SIGKILL a second later: the file must hold the 3 MiB and say the run did not finish."""
import os
import signal
import subprocess
import time

subprocess.run(["true"], check=True)
kept = bytearray(3 * 1024 * 1024)  # L:kept
time.sleep(1.0)
os.kill(os.getpid(), signal.SIGKILL)
