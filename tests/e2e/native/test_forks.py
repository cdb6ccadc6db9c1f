"""fork, posix_spawn and exec under the preload: which processes write a file (MEMPROF_FOLLOW),
and each file holds its own process's lines, exactly."""
import os

import harness
from harness import expect_eq
from native_common import expect_no_row, expect_row, marks, meta, one_file, prog, run_both, src

SRC = src("forks.c")
KiB = 1024
L = marks(SRC, "PARENT_BEFORE", "PARENT_AFTER", "CHILD", "EXECD", "CHILD_EXEC")


def check_parent(db, after=True):
    rows = harness.report_rows(db)
    expect_row(rows, SRC, L["PARENT_BEFORE"], "parent before fork", allocations=1, allocated_bytes=200 * KiB,
               end_bytes=200 * KiB)
    if after:
        expect_row(rows, SRC, L["PARENT_AFTER"], "parent after the child", allocations=1,
                   allocated_bytes=300 * KiB, end_bytes=300 * KiB)
    expect_no_row(rows, SRC, L["CHILD"], "child line in the parent's file")
    expect_no_row(rows, SRC, L["EXECD"], "exec'd line in the parent's file")
    s = harness.stats(db)
    expect_eq((s["unmatched_frees"], s["dropped_events"], s["status"]), (0, 0, "complete"), "parent file state")


def check_execd(db):
    rows = harness.report_rows(db)
    expect_row(rows, SRC, L["EXECD"], "exec'd image", allocations=4, allocated_bytes=200 * KiB,
               end_bytes=200 * KiB, peak_bytes=200 * KiB)
    for m in ("PARENT_BEFORE", "PARENT_AFTER", "CHILD"):
        expect_no_row(rows, SRC, L[m], m + " in the exec'd image's file")
    s = harness.stats(db)
    expect_eq((s["allocations"], s["unmatched_frees"], s["status"]), (4, 0, "complete"), "exec'd file")


def test_fork_child_not_followed_by_default():
    for follow in (None, "python", "root"):
        env = {"MEMPROF_FOLLOW": follow} if follow else None
        p, files = run_both([prog("forks"), "fork"], env=env, expect_rc=0)
        expect_eq(p.stdout, b"child done\nparent: child status 0\n", "stdout")
        check_parent(one_file(files))
        for f in files:
            os.unlink(f)


def test_fork_follow_all():
    p, files = run_both([prog("forks"), "fork"], env={"MEMPROF_FOLLOW": "all"}, expect_rc=0)
    expect_eq(len(files), 2, "files %r" % files)
    m = {f: meta(f) for f in files}
    parent = [f for f in files if any(m[g]["ppid"] == m[f]["pid"] for g in files)]
    expect_eq(len(parent), 1, "one file is the parent of the other")
    parent = parent[0]
    child = [f for f in files if f != parent][0]
    check_parent(parent)
    rows = harness.report_rows(child)
    expect_row(rows, SRC, L["CHILD"], "child", allocations=3, allocated_bytes=300 * KiB, end_bytes=200 * KiB,
               peak_bytes=300 * KiB)
    expect_no_row(rows, SRC, L["PARENT_AFTER"], "parent's line in the child's file")
    expect_no_row(rows, SRC, L["PARENT_BEFORE"], "parent's pre-fork line in the child's file")
    s = harness.stats(child)
    expect_eq((s["allocations"], s["frees"], s["allocated_bytes"], s["end_bytes"]),
              (3, 1, 300 * KiB, 200 * KiB), "child (allocations, frees, allocated, end)")
    expect_eq((s["unmatched_frees"], s["status"]), (0, "complete"), "child file state")


def files_by_lines(files):
    """(parent file, exec'd file, others) by the rows they hold."""
    parent, execd, others = [], [], []
    for f in files:
        rows = harness.report_rows(f)
        if harness.rows_at(rows, "/forks.c", L["EXECD"]):
            execd.append(f)
        elif harness.rows_at(rows, "/forks.c", L["PARENT_BEFORE"]):
            parent.append(f)
        else:
            others.append(f)
    return parent, execd, others


def test_spawn_not_followed_by_default():
    for mode in ("spawn", "forkexec"):
        p, files = run_both([prog("forks"), mode], expect_rc=0)
        expect_eq(p.stdout, b"execd done\nparent: child status 0\n", "stdout")
        check_parent(one_file(files))
        os.unlink(files[0])


def test_spawn_follow_all():
    p, files = run_both([prog("forks"), "spawn"], env={"MEMPROF_FOLLOW": "all"}, expect_rc=0)
    expect_eq(len(files), 2, "files %r" % files)
    parent, execd, others = files_by_lines(files)
    expect_eq((len(parent), len(execd)), (1, 1), "parent and exec'd files among %r" % files)
    check_parent(parent[0])
    check_execd(execd[0])
    expect_eq(meta(execd[0])["ppid"], meta(parent[0])["pid"], "exec'd child's ppid")


def test_fork_exec_follow_all():
    """A forked child that execs before it recorded anything leaves no file: the image it
    execs removes it (MEMPROF_EXEC_EMPTY) and writes its own under the same name, also
    after an exec that failed; a child that allocated keeps its file, and the new image
    writes memprof.<pid>.1.db beside it."""
    for mode in ("forkexec", "forkexecfail"):
        p, files = run_both([prog("forks"), mode], env={"MEMPROF_FOLLOW": "all"}, expect_rc=0)
        expect_eq(p.stdout, b"execd done\nparent: child status 0\n", mode + " stdout")
        parent, execd, others = files_by_lines(files)
        expect_eq((len(parent), len(execd), others), (1, 1, []), "%s: parent and exec'd files among %r" % (mode, files))
        check_parent(parent[0])
        check_execd(execd[0])
        expect_eq(os.path.basename(execd[0]), "memprof.%d.db" % int(meta(execd[0])["pid"]), mode + " exec'd file's name")
        for f in files:
            os.unlink(f)
    # bash, exec'd by the child, removes the child's file and then writes its own under
    # that name; the variable must not reach the program bash execs in its place (bash's
    # own unsetenv leaves environ as it is), which would remove bash's file in turn
    p, files = run_both([prog("forks"), "forkexecbash"], env={"MEMPROF_FOLLOW": "all"}, expect_rc=0)
    parent, execd, others = files_by_lines(files)
    expect_eq((len(parent), len(execd), len(others)), (1, 1, 1), "parent, exec'd and bash files among %r" % files)
    check_execd(execd[0])
    pid = int(meta(others[0])["pid"])
    expect_eq((meta(others[0])["exe"], os.path.basename(others[0]), os.path.basename(execd[0])),
              ("/usr/bin/bash", "memprof.%d.db" % pid, "memprof.%d.1.db" % pid), "bash's file and its new image's")
    for f in files:
        os.unlink(f)
    p, files = run_both([prog("forks"), "forkallocexec"], env={"MEMPROF_FOLLOW": "all"}, expect_rc=0)
    parent, execd, others = files_by_lines(files)
    expect_eq((len(parent), len(execd), len(others)), (1, 1, 1), "parent, exec'd and child files among %r" % files)
    check_parent(parent[0])
    check_execd(execd[0])
    rows = harness.report_rows(others[0])
    expect_row(rows, SRC, L["CHILD_EXEC"], "child before its exec", allocations=1, allocated_bytes=64 * KiB,
               end_bytes=64 * KiB)
    pid = int(meta(others[0])["pid"])
    expect_eq((os.path.basename(others[0]), os.path.basename(execd[0])),
              ("memprof.%d.db" % pid, "memprof.%d.1.db" % pid), "the child's and its new image's file names")


def test_root_exec_from_a_wrapper_takes_over_the_file():
    # the root's new image takes over the file of a wrapper that execs it (a shell, env:
    # think pyenv shim -> python), by default and under `root`
    for follow in (None, "root"):
        env = {"MEMPROF_FOLLOW": follow} if follow else None
        argv = ["/bin/sh", "-c", "exec /usr/bin/env %s execd" % prog("forks")]
        p, files = run_both(argv, env=env, expect_rc=0)
        expect_eq(p.stdout, b"execd done\n", "stdout")
        check_execd(one_file(files))
        os.unlink(files[0])


def test_root_exec_keeps_a_programs_profile():
    # a program that execs another (here itself) keeps its profile, by default and under
    # `root`: the new image writes a file of its own, and nothing the first one recorded
    # is lost
    for follow in (None, "root"):
        env = {"MEMPROF_FOLLOW": follow} if follow else None
        p, files = run_both([prog("forks"), "reexec"], env=env, expect_rc=0)
        expect_eq(p.stdout, b"execd done\n", "stdout")
        parent, execd, others = files_by_lines(files)
        expect_eq((len(parent), len(execd), others), (1, 1, []), "files of the two images: %r" % files)
        check_parent(parent[0])
        check_execd(execd[0])
        for f in files:
            os.unlink(f)


def test_root_exec_follow_all_keeps_both_images():
    # with MEMPROF_FOLLOW=all both images keep a file, and nothing the first one recorded is lost
    p, files = run_both([prog("forks"), "reexec"], env={"MEMPROF_FOLLOW": "all"}, expect_rc=0)
    expect_eq(len(files), 2, "files %r" % files)
    parent, execd, others = files_by_lines(files)
    expect_eq((len(parent), len(execd), others), (1, 1, []),
              "files with the first image's lines, with the exec'd image's lines, other files")
    check_parent(parent[0])
    check_execd(execd[0])


if __name__ == "__main__":
    harness.run(globals())
