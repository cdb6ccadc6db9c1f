"""Writes CPython line-table test cases for tests/unit/test_pyline.c (3.11, 3.12 and 3.13
share the format: the test runs with each; 3.9's and 3.10's tables, in their own formats,
are checked through the capture's conversion, preload/pyline_convert.c).

Usage: gen_pyline_cases.py OUTFILE

Compiles real code (stdlib packages, synthetic sources exercising every entry form of
the location table: nested functions, comprehensions, lambdas, decorators, huge line
numbers, wide columns, instructions without a line) and writes, for every code object,
its co_linetable (3.9: co_lnotab), co_firstlineno and the line of every code unit as
co_lines() reports it (-1 for None). Each expected line is cross-checked against the
interpreter's own PyCode_Addr2Line through ctypes, which is the function the C decoder
must imitate (3.9 has no co_lines(): PyCode_Addr2Line alone).

Format (native little-endian): b"PYLC0001" (3.11's format), b"PYLC0310" (3.10's) or
b"PYLC0309" (3.9's), then per code object
u32 table_len, i32 firstlineno, u32 n_units, table bytes, n_units * i32 line.
"""
import ctypes
import importlib.util
import os
import struct
import sys
import types

assert (3, 9) <= sys.version_info[:2] <= (3, 13), "line tables of 3.9 to 3.13"
MAGIC = {(3, 9): b"PYLC0309", (3, 10): b"PYLC0310"}.get(sys.version_info[:2], b"PYLC0001")

PACKAGES = ["json", "email", "argparse", "typing", "collections", "asyncio",
            "unittest", "logging", "http", "xml", "dataclasses", "enum", "inspect",
            "ast", "difflib", "pathlib", "tarfile", "zipfile", "statistics"]

SYNTHETIC = [
    # nested functions, lambdas, comprehensions, generators, closures
    '''
def outer(a, b=lambda x: x * 2):
    def inner(y):
        return [z for z in range(y) if z % 2] + list({k: v for k, v in zip(a, a)})
    g = (inner(q) for q in a
         if q)
    return sum(len(x) for x in g), (lambda: b(3))()
class K:
    attr = [i for i in range(3)]
    def method(self):
        return {j for j in self.attr}
''',
    # instructions without a line: finally/with/for-else cleanups, implicit returns
    '''
def cleanup(path):
    try:
        with open(path) as f:
            for line in f:
                if line:
                    break
            else:
                pass
    finally:
        print("done")
    while True:
        try:
            x = 1
        except (ValueError, TypeError) as e:
            del e
            continue
        break
async def agen():
    async with ctx() as c:
        async for item in c:
            yield item
''',
    # decorators and multi-line calls move the line backwards and forwards
    '''
@deco(
    1,
    2)
@other
def decorated(
        a,
        b):
    return f(a,
             b,
             g(
                 a))
''',
    # huge line numbers (multi-byte varints) and wide columns (long form)
    "\n" * 100000 + "def far():\n    x = 1\n" + "\n" * 5000 + "    return x\n" +
    "y = " + "+".join(["aaaa"] * 200) + "\n" +
    "\n" * 70000 + "z = [\n" + "\n" * 300 + "  far()]\n",
    # many small statements with no line gaps
    "".join("v%d = %d if v%d else None\n" % (i, i, i) for i in range(400)),
]


def walk(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from walk(const)


def package_sources(name):
    spec = importlib.util.find_spec(name)
    if spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            for dirpath, _, files in os.walk(root):
                for fn in sorted(files):
                    if fn.endswith(".py"):
                        yield os.path.join(dirpath, fn)
    else:
        yield spec.origin


def main():
    addr2line = ctypes.pythonapi.PyCode_Addr2Line
    addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
    addr2line.restype = ctypes.c_int

    sources = []
    for pkg in PACKAGES:
        for path in package_sources(pkg):
            with open(path, encoding="utf-8") as f:
                sources.append((f.read(), path))
    sources += [(src, "<synthetic%d>" % i) for i, src in enumerate(SYNTHETIC)]

    n_codes = n_units = n_none = 0
    with open(sys.argv[1], "wb") as out:
        out.write(MAGIC)
        for src, path in sources:
            for code in walk(compile(src, path, "exec")):
                units = len(code.co_code) // 2
                if hasattr(code, "co_lines"):
                    lines = [-1] * units
                    for start, end, line in code.co_lines():
                        for off in range(start // 2, end // 2):
                            lines[off] = -1 if line is None else line
                else:  # 3.9: PyCode_Addr2Line alone
                    lines = [addr2line(code, off * 2) for off in range(units)]
                for off in range(units):
                    real = addr2line(code, off * 2)
                    if real != lines[off]:
                        sys.exit("%s:%s offset %d: co_lines %d, PyCode_Addr2Line %d"
                                 % (path, code.co_name, off, lines[off], real))
                table = code.co_linetable if hasattr(code, "co_linetable") else code.co_lnotab
                out.write(struct.pack("<IiI", len(table), code.co_firstlineno, units))
                out.write(table)
                out.write(struct.pack("<%di" % units, *lines))
                n_codes += 1
                n_units += units
                n_none += lines.count(-1)
    print("gen_pyline_cases: %d code objects, %d offsets (%d without line)"
          % (n_codes, n_units, n_none), file=sys.stderr)


if __name__ == "__main__":
    main()
