"""libmemprof.so's code in memory (preload/hotcode.c, hotcode.ld): what runs after
start-up sits in the section .text.memprof_hot, and the rest of the library's code is
dropped from the process once the program runs, so that a profiled program holds a
fraction of memprof's 1.4 MiB of code. Before, 1,276 KiB of it stayed resident in
py_threads."""
import os
import subprocess
import time

import harness
from harness import expect_eq

FAULT_AROUND = 64 << 10  # the kernel maps a file's pages in windows of 64 KiB


def symbols():
    """Function name -> address; a local one also under its name without the compiler's
    suffixes (writer_main.lto_priv.0; not the split-off .cold parts)."""
    out = subprocess.run(["nm", harness.LIB], capture_output=True, text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        p = line.split()
        if len(p) == 3 and not p[2].endswith(".cold"):
            res.setdefault(p[2], int(p[0], 16))
            res.setdefault(p[2].split(".")[0], int(p[0], 16))
    return res


def section(name):
    out = subprocess.run(["readelf", "-SW", harness.LIB], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        p = line.replace("[ ", "[").split()
        if len(p) > 5 and p[1] == name:
            return int(p[3], 16), int(p[5], 16)
    raise AssertionError("no section %s in %s" % (name, harness.LIB))


def test_layout():
    """The writer's, the capture's, SQLite's and jemalloc's steady-state code lie in the
    section; SQLite's parser and jemalloc's statistics, which only start-up runs (or
    nothing), do not."""
    lo, size = section(".text.memprof_hot")
    sym = symbols()
    expect_eq((sym["memprof_hot_start"], sym["memprof_hot_end"]), (lo, lo + size), "the section's bounds")
    for name in ("writer_main", "sqlite3VdbeExec", "sqlite3BtreeInsert", "sqlite3WalFrames", "memprof_je_mallocx",
                 "memprof_je_dallocx"):
        if not lo <= sym[name] < lo + size:
            raise AssertionError("%s at %#x, outside .text.memprof_hot [%#x, %#x)" % (name, sym[name], lo, lo + size))
    for name in ("sqlite3Parser", "sqlite3Select", "je_stats_print"):
        if lo <= sym[name] < lo + size:
            raise AssertionError("%s (start-up only) in .text.memprof_hot" % name)


def resident_code(pid):
    """Resident KiB of the library's executable mapping."""
    total, inside = 0, False
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            p = line.split()
            if "-" in p[0] and len(p) >= 5 and ":" in p[3]:
                inside = len(p) >= 6 and p[5] == os.path.realpath(harness.LIB) and p[1].startswith("r-x")
            elif inside and p[0] == "Rss:":
                total += int(p[1])
    return total


def test_cold_code_dropped():
    """A program that runs a second: a moment into it, the library's resident code is
    at most its hot section and a few of the kernel's 64 KiB windows around pages that
    run now and then; its output and profile as always."""
    _, size = section(".text.memprof_hot")
    limit_kib = (size + 4 * FAULT_AROUND) // 1024
    code = "import sys, time\nx = [bytearray(1000) for _ in range(1000)]\nsys.stdout.write('ready\\n')\nsys.stdout.flush()\ntime.sleep(1.5)\nprint(len(x))\n"
    p = subprocess.Popen(["/usr/bin/python3", "-c", code], env=harness.preload_env({"MEMPROF_OUTPUT": "hot.db"}),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        expect_eq(p.stdout.readline(), b"ready\n", "the program's first line")
        time.sleep(0.5)
        kib = resident_code(p.pid)
    finally:
        out, err = p.communicate(timeout=60)
    expect_eq((p.returncode, out, err), (0, b"1000\n", b""), "exit status, rest of stdout, stderr")
    if kib > limit_kib:
        raise AssertionError("%d KiB of libmemprof.so's code resident, more than its hot section (%d KiB) and "
                             "four 64 KiB windows" % (kib, size // 1024))
    s = harness.stats("hot.db")
    expect_eq((s["status"], s["dropped_events"]), ("complete", 0), "(status, dropped)")


PATCHED = """import ctypes, time
lz = ctypes.CDLL("liblzma.so.5")
f = lz.lzma_version_number
f.restype = ctypes.c_uint32
addr = ctypes.cast(f, ctypes.c_void_p).value
libc = ctypes.CDLL(None)
libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
page = addr & ~4095
assert libc.mprotect(page, 8192, 7) == 0
ctypes.memmove(addr, b"\\xb8\\x78\\x56\\x34\\x12\\xc3", 6)  # mov eax, 0x12345678; ret
assert libc.mprotect(page, 8192, 5) == 0
print(hex(f()), flush=True)
time.sleep(2.5)
print(hex(f()), flush=True)
"""


def test_patched_code_kept():
    """Code patched in place (as a debugger's breakpoint, a hooking library or a uprobe
    does) is a private copy of its page, which memprof's drops leave alone: liblzma's
    lzma_version_number, rewritten to return 0x12345678, still does after a drop
    (before, the drop read the file's page again: the real version)."""
    p, _ = harness.profile(["/usr/bin/python3", "-c", PATCHED], env={"MEMPROF_OUTPUT": "patched.db"})
    expect_eq((p.returncode, p.stdout, p.stderr), (0, b"0x12345678\n0x12345678\n", b""),
              "exit status, stdout, stderr")


if __name__ == "__main__":
    harness.run(globals())
