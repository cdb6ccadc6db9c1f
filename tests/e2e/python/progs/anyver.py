"""Runs on any Python 3: allocates, writes to both streams, exits with status 5."""
import sys

blocks = [bytearray(1 << 20) for _ in range(8)]  # L:blocks
print("blocks", len(blocks), sys.version_info[:2])
sys.stderr.write("on stderr\n")
sys.exit(5)
