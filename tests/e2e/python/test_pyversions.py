"""The CPython versions other than 3.11 that the library has a frame walk for (3.9, 3.10,
3.12 and 3.13: pyenv has them here): the Python end-to-end tests that run "both interpreters"
(pythons(); sampling's too) run again with these versions' interpreters in their place, with
the same figures known in advance. Each version's walk reads its own frame layout (3.9, 3.10:
frame objects, f_lasti, tstate->frame; 3.13: f_executable, instr_ptr, current_frame; 3.12
and 3.13: the shim frames C code pushes where it calls Python, which are never part of a
stack); 3.12's comprehensions run in their function's own frame (PEP 709), and 3.9's and 3.10's
functions have bare names (no co_qualname), which the tests allow for."""
import glob
import inspect
import os
import sys

import harness
import pycommon

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sampling"))

import test_basic
import test_cext
import test_codereuse
import test_deepstacks
import test_exec
import test_forkthreads
import test_frames
import test_merge
import test_processes
import test_sampling
import test_signals
import test_threads
import test_tracemalloc
import test_unwind
import test_zipapp

MODULES = [test_basic, test_cext, test_codereuse, test_deepstacks, test_exec, test_forkthreads, test_frames,
           test_merge, test_processes, test_sampling, test_signals, test_threads, test_tracemalloc, test_unwind,
           test_zipapp]


# --version=X.Y (first argument): that version alone (meson runs one test a version, in
# parallel)
ONLY = sys.argv.pop(1)[len("--version="):] if len(sys.argv) > 1 and sys.argv[1].startswith("--version=") else None


def newer_pythons():
    """An interpreter of each supported version but 3.11 (or ONLY's); one that the build
    supports and this machine lacks is an error (pyenv's are part of this machine's
    image)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    out = []
    for v in os.environ.get("MEMPROF_TEST_PY_VERSIONS", "3.11").split():
        if v == "3.11" or (ONLY and v != ONLY):
            continue
        exes = sorted(glob.glob(os.path.join(root, "versions", v + ".*", "bin", "python" + v)))
        if not exes:
            raise AssertionError("the library has the %s walk, but no python%s is in %s" % (v, v, root))
        out.append(exes[-1])
    return out


def tests_of(mod):
    """The module's tests that run pycommon.pythons()' interpreters."""
    for name, fn in sorted(vars(mod).items()):
        if name.startswith("test_") and callable(fn) and "pythons()" in inspect.getsource(fn):
            yield name, fn


def make(mod, name, fn):
    def t():
        pys = newer_pythons()
        if not pys:
            raise harness.Skip("the library has no frame walk but 3.11's")
        saved = mod.pythons, pycommon.pythons
        mod.pythons = pycommon.pythons = lambda: list(pys)
        try:
            fn()
        finally:
            mod.pythons, pycommon.pythons = saved
    return t


for _mod in MODULES:
    for _name, _fn in tests_of(_mod):
        globals()["test_%s__%s" % (_mod.__name__[len("test_"):], _name[len("test_"):])] = make(_mod, _name, _fn)


def test_every_module_has_tests_here():
    for mod in MODULES:
        if not any(True for _ in tests_of(mod)):
            raise AssertionError("%s has no test that runs pycommon.pythons()" % mod.__name__)


if __name__ == "__main__":
    harness.run(globals())
