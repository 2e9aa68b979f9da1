"""The archive file: only a trusted one is used, and one changed under a
running process is noticed (warning, normal imports) or, when the process
touches bytes that are gone, ends it with one clear line."""

import os
import shutil
import signal
import stat

import pytest

from conftest import STATS, run, stats_of, without_stats

PROG = "import m; print(m.f())\n" + STATS


def archive_of_m(ws):
    ws.write("m.py", "def f():\n    return 'm ok'\n")
    return ws.archive("-c", "import m")


def assert_refused(ws, reason_part):
    proc = ws.replay("-c", PROG)
    assert without_stats(proc.stdout) == "m ok"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cds: warning: cannot use archive {ws.img}:"), proc.stderr
    assert reason_part in lines[0]
    assert stats_of(proc)["archive"] is None
    proc = ws.replay("-Xcds_mode=on", "-c", PROG, check=False)
    assert proc.returncode == 1 and proc.stdout == "" and reason_part in proc.stderr


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_group_or_other_writable_archive_is_refused(ws, mode):
    img = archive_of_m(ws)
    img.chmod(mode)
    assert_refused(ws, f"writable by group or others (mode {mode:04o})")


def test_read_only_archive_is_used(ws):
    img = archive_of_m(ws)
    img.chmod(0o444)
    proc = ws.replay("-c", PROG)
    assert proc.stderr == "" and "m" in stats_of(proc)["served"]


def test_archive_of_another_user_is_refused(ws):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the archive to another user")
    img = archive_of_m(ws)
    os.chown(img, 65534, 65534)
    assert_refused(ws, "owned by uid 65534, neither this user (uid 0) nor root")


# A program that maps the archive, imports m from it, then changes the file
# as sys.argv[1] says, then imports b (archived too) and prints both.
CHANGE_THEN_IMPORT = """
import os, shutil, sys
import m
how, img = sys.argv[1], sys.argv[2]
if how == "truncate":
    os.truncate(img, 4096)
elif how == "overwrite":
    shutil.copyfile(sys.argv[3], img)   # same inode, new bytes (cp does this)
import b
print(b.g(), flush=True)
"""


def two_module_archive(ws):
    ws.write("m.py", "def f():\n    return 'm ok'\nBIG = 'x' * 100000\n")
    ws.write("b.py", "def g():\n    return 'b ok'\n")
    ws.lst.write_text(f"m\t{ws.path / 'm.py'}\nb\t{ws.path / 'b.py'}\n")
    ws.dump()
    return ws.img


def test_truncated_archive_is_noticed_then_fatal_with_one_line(ws):
    img = two_module_archive(ws)
    prog = CHANGE_THEN_IMPORT + "print(m.BIG[-1], m.f())\n"
    proc = run(f"-Xcds={img}", "-c", prog, "truncate", img, cwd=ws.path, check=False, timeout=60)
    # Touching m's objects, whose pages are gone, ends the process: at the
    # latest at m.BIG, earlier when a collection visits them (importing b
    # can trigger one, so b ok and the warning may or may not come first).
    assert proc.returncode == -signal.SIGBUS, proc.stderr
    if proc.stdout:
        assert proc.stdout.splitlines()[0] == "b ok"
        assert f"cds: warning: archive {img} was changed in place while in use" in proc.stderr
    fatal = [l for l in proc.stderr.splitlines() if l.startswith("cds: fatal:")]
    assert len(fatal) == 1, proc.stderr
    assert fatal[0].startswith(f"cds: fatal: archive {img} was truncated or overwritten while in use (fault at offset ")


def test_truncated_archive_under_faulthandler_still_dies_by_the_signal(ws):
    img = two_module_archive(ws)
    prog = CHANGE_THEN_IMPORT + "print(m.BIG[-1], m.f())\n"
    proc = run("-Xfaulthandler", f"-Xcds={img}", "-c", prog, "truncate", img, cwd=ws.path, check=False, timeout=60)
    assert proc.returncode == -signal.SIGBUS, proc.stderr
    assert "Bus error" in proc.stderr or "cds: fatal: archive" in proc.stderr


def test_overwritten_archive_is_noticed(ws):
    img = two_module_archive(ws)
    other = ws.path / "other.img"
    shutil.copyfile(img, other)
    with open(other, "r+b") as f:  # same size, one byte different
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    proc = run(f"-Xcds={img}", "-c", CHANGE_THEN_IMPORT + STATS, "overwrite", img, other, cwd=ws.path, check=False)
    # m's objects now read the new file's bytes (copyfile truncates first,
    # which drops even the pages relocation copied): the process may survive
    # (b imported normally once the change is noticed) or die, and then says
    # why; a collection visiting m's objects can come before b's import.
    noticed = f"cds: warning: archive {img} was changed in place while in use"
    if proc.returncode == 0:
        assert proc.stdout.splitlines()[0] == "b ok"
        assert noticed in proc.stderr
        assert stats_of(proc)["served"] == ["m"]
    elif proc.returncode == -signal.SIGABRT:
        # A --with-pydebug interpreter checks its interned names at exit and
        # finds the archive's (interned at start-up, 3.13) reading as the new
        # file says: not interned. cds said why before.
        assert noticed in proc.stderr and "Fatal Python error: _PyUnicode_ClearInterned" in proc.stderr, proc.stderr
        assert run("-c", "import sysconfig; print(sysconfig.get_config_var('Py_DEBUG'))").stdout.strip() == "1"
    else:
        assert proc.returncode in (-signal.SIGSEGV, -signal.SIGBUS), proc.stderr
        assert f"cds: fatal: archive {img} was truncated or overwritten while in use (fault at " in proc.stderr
