"""Prints how many blocks Python's allocators count as allocated after 200,000 lists grown
by append and dicts of six entries were made and dropped, against before: 2, as without
memprof. sys.getallocatedblocks() counts the blocks pymalloc hands to the RAW domain
itself; a sampled block that sampling mode took out of pymalloc's pools must be one of
those, or its free makes the count drift (by one per sampled block)."""
import sys

before = sys.getallocatedblocks()
for i in range(200_000):
    items = []
    for j in range(40):
        items.append(j)
    d = {"i": i, "items": items, "a": 1, "b": 2, "c": 3, "e": 4}
del items, d
print(sys.getallocatedblocks() - before)
