#!/usr/bin/env python3
"""python_headers.py X.Y: of a CPython X.Y whose internal headers are installed, one a
line: the interpreter; its shared libpython as "LIBDIR<tab>NAME" (link: -LLIBDIR -lNAME),
or "-" when it has none; then its include directories. For a build machine whose
pkg-config does not know python-X.Y (meson.build asks pkg-config first): the interpreter
python3.Y on PATH, in /usr/local/bin, /usr/bin, or among pyenv's versions. Prints
nothing when there is none."""
import glob
import os
import subprocess
import sys

ver = sys.argv[1]
exe_name = "python" + ver
cands = []
for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/local/bin", "/usr/bin"]:
    if d and "shims" not in d.split(os.sep):  # a pyenv shim runs the selected version
        cands.append(os.path.join(d, exe_name))
root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
cands += sorted(glob.glob(os.path.join(root, "versions", ver + ".*", "bin", exe_name)), reverse=True)
for exe in cands:
    if not os.access(exe, os.X_OK):
        continue
    try:
        out = subprocess.run([exe, "-c", "import sysconfig, sys; p = sysconfig.get_paths(); "
                              "print(sys.version_info[:2] == (%s)); print(p['include']); print(p['platinclude']); "
                              "print(sysconfig.get_config_var('LIBDIR')); "
                              "print('python' + sysconfig.get_config_var('LDVERSION'))" % ver.replace(".", ", ")],
                             capture_output=True, text=True, timeout=30).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        continue
    if len(out) < 5 or out[0] != "True":
        continue
    dirs = list(dict.fromkeys(d for d in out[1:3] if d))
    libdir, name = out[3], out[4]
    lib = "%s\t%s" % (libdir, name) if os.path.exists(os.path.join(libdir, "lib%s.so" % name)) else "-"
    if os.path.exists(os.path.join(dirs[0], "internal", "pycore_runtime.h")) and \
            any(os.path.exists(os.path.join(d, "pyconfig.h")) for d in dirs):
        print("\n".join([exe, lib] + dirs))
        break
