"""Allocations in every kind of Python frame, each a bytearray of a distinct size at a
known line: generator, coroutine under asyncio, deep recursion (deeper than any stack
limit a profiler might use), lambda, class body, nested function, a finally block after
an exception, a multi-line call (the line of the call's argument being evaluated), a
function called from a generator object after another (moved); and
the cells a function makes before its first line runs (its frame is not complete yet:
they belong to the caller's line, as tracemalloc has it)."""
import asyncio

kept = []


def gen(n):
    for i in range(n):
        yield bytearray(10001)  # L:gen


async def coro():
    await asyncio.sleep(0)
    kept.append(bytearray(10002))  # L:coro
    await asyncio.sleep(0)
    return bytearray(10003)  # L:coro2


def deep(n):
    if n == 0:
        return bytearray(10004)  # L:deep
    return deep(n - 1)


make = lambda: bytearray(10005)  # L:lambda


class K:
    attr = bytearray(10006)  # L:class


def outer():
    def inner():
        return bytearray(10007)  # L:inner
    return inner()


def fin():
    try:
        raise ValueError("x")
    except ValueError:
        pass
    finally:
        kept.append(bytearray(10008))  # L:finally


def multi():
    return (len("a"),
            bytearray(10009),  # L:multi
            len("b"))


def with_cell(i):  # L:celldef
    v = i
    def get():
        return v
    return get


def make_cells():
    out = []
    for i in range(1000):
        out.append(with_cell(i))  # L:cells
    return out


def leaf(n):
    return bytearray(n)  # L:leaf


def gen_a():
    yield leaf(10010)  # L:gena


def gen_b():
    yield leaf(10011)  # L:genb


def moved():
    """leaf's frame at the same place on the thread's frame stack each time, below it
    the frame of another generator object each time: the frames under the innermost are
    not where the previous stack's were, in pairs of the same generator function (the
    same positions) and then the other one."""
    gens = [gen_a() if i // 2 % 2 else gen_b() for i in range(200)]
    total = 0
    for g in gens:
        for b in g:
            total += len(b)
    return total


kept.extend(gen(3))
kept.append(moved())
kept.append(asyncio.run(coro()))
kept.append(deep(600))
kept.append(make())
kept.append(outer())
fin()
kept.append(multi())
kept.append(make_cells())
print(len(kept))
