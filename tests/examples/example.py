"""memprof's bundled example: a small program with memory behaviour worth looking at.

- load_records() builds 200,000 dicts that stay alive until main() drops them (the peak)
- to_json() makes one big string (temporary) from them
- word_counts() churns through short-lived strings (many allocations, nothing kept)
- CACHE keeps 5,000 entries that are never freed (live at the end)
"""
import json

CACHE = {}


def load_records(n):
    return [{"id": i, "name": "record-%d" % i, "tags": ["a", "b", str(i % 10)]} for i in range(n)]


def to_json(records):
    return json.dumps(records)


def word_counts(text):
    counts = {}
    for word in text.split(","):
        key = word.strip()[:8]
        counts[key] = counts.get(key, 0) + 1
    return counts


def remember(n):
    for i in range(n):
        CACHE[i] = bytearray(1024)


def main():
    records = load_records(200_000)
    text = to_json(records)
    del records
    counts = word_counts(text)
    remember(5_000)
    print("json: %d bytes, %d distinct prefixes, %d cached" % (len(text), len(counts), len(CACHE)))


if __name__ == "__main__":
    main()
