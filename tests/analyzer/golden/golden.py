"""memprof's golden capture: a small program with allocations at known lines.

tests/analyzer/golden/regen runs it under the preload library and writes capture.db.xz and
the expected outputs of every command next to it (see README.md, Tests)."""

KEEP = []


def build(n):
    rows = [bytearray(1000) for _ in range(n)]
    return rows


def churn(n):
    total = 0
    for i in range(n):
        total += len("x" * (100 + i % 7))
    return total


def main():
    data = build(50)
    big = bytearray(4 * 1024 * 1024)
    del big
    churn(400)
    KEEP.append(bytes(50_000))
    del data


main()
