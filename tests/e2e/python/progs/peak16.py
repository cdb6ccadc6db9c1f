"""16 x 8 MiB bytearrays alive together at one line, a thread keeping a list in a
global, 100k short-lived objects in a loop, then exit with status 7."""
import sys
import threading

MIB8 = 8 * 1024 * 1024
N_LOOP = 100000
kept = None


def big():
    blocks = [bytearray(MIB8) for _ in range(16)]  # L:big
    total = sum(len(b) for b in blocks)
    del blocks
    return total


def worker():
    global kept
    kept = [object() for _ in range(5000)]  # L:thread


def churn():
    n = 0
    for i in range(N_LOOP):
        s = str(i) * 3  # L:churn
        n += len(s)
    return n


def main():
    print("big", big())
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    print("churn", churn())
    print("kept", len(kept))
    sys.stderr.write("to stderr\n")
    sys.exit(7)


main()
