"""Allocations in every kind of Python frame, each a bytearray of a distinct size at a
known line: generator, coroutine under asyncio, deep recursion (deeper than any stack
limit a profiler might use), lambda, class body, nested function, a finally block after
an exception, a multi-line call (the line of the call's argument being evaluated)."""
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


kept.extend(gen(3))
kept.append(asyncio.run(coro()))
kept.append(deep(600))
kept.append(make())
kept.append(outer())
fin()
kept.append(multi())
print(len(kept))
