"""A 64 MiB buffer kept through half a second of sleep, then dropped, then another
0.3 s of sleep: no allocation in between to move the time on."""
import time

big = bytearray(64 << 20)  # L:big
time.sleep(0.5)
del big
time.sleep(0.3)
