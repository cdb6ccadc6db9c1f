"""Small blocks, made by malloc and by realloc, most of them short-lived (sampling mode's
test: a sampled block must never be one whose free goes unseen). 200,000 times: a list
grown by append to 40 items (its item array reallocated up to 320 bytes, every size
within pymalloc's pools) and a dict of six entries (a keys table of its own: smaller
dicts reuse one from a free list), dropped on the next turn; then 100,000 lists of 40
items kept to the end: 100,000 item arrays of 320 bytes live at the end on line L:keep."""
kept = []


def churn(n):
    for i in range(n):
        items = []
        for j in range(40):
            items.append(j)  # L:append (item arrays freed with their list)
        d = {"i": i, "items": items, "a": 1, "b": 2, "c": 3, "e": 4}  # L:dict (a keys table each)
    return d


def keep(n):
    for i in range(n):
        items = []
        for j in range(40):
            items.append(j)  # L:keep (item arrays kept)
        kept.append(items)


churn(200_000)
keep(100_000)
print(len(kept))
