"""Runs a child through subprocess (a vfork child that execs), keeps 3 MiB, and is killed
by SIGKILL from another process a second later: the file must hold the 3 MiB and say the
run did not finish. (Not os.kill(os.getpid(), SIGKILL): memprof's kill hook writes
everything before a program kills itself.)"""
import os
import subprocess
import time

subprocess.run(["true"], check=True)
kept = bytearray(3 * 1024 * 1024)  # L:kept
time.sleep(1.0)
subprocess.Popen(["kill", "-KILL", str(os.getpid())])
time.sleep(30)
