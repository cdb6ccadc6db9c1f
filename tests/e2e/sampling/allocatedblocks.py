"""Prints how many blocks Python's allocators count as allocated after 200,000 lists grown
by append and dicts of six entries were made and dropped, against before: 1 (the int
`before` itself), as without memprof. sys.getallocatedblocks() counts the blocks
pymalloc hands to the RAW domain itself; a sampled block that sampling mode took out of
pymalloc's pools must be one of those, or its free makes the count drift (by one per
sampled block).

One round runs before the count is taken: its first `items.append` puts list.append in
CPython's method cache, and the entry it replaces may hold the last reference to a
temporary name (3.10 keys the cache by the name's address: the start-up's
PyImport_GetMagicNumber leaves "_RAW_MAGIC_NUMBER" there). Where that entry is depends on
where blocks landed, which sampling changes; counted inside the loop, its free made the
result one lower in about 2 of 100 runs with memprof (CI, stop 30; 3 of 400 here)."""
import sys


def churn(n):
    for i in range(n):
        items = []
        for j in range(40):
            items.append(j)
        d = {"i": i, "items": items, "a": 1, "b": 2, "c": 3, "e": 4}
    del items, d


churn(1)
before = sys.getallocatedblocks()
churn(200_000)
print(sys.getallocatedblocks() - before)
