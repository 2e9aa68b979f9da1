"""Writing an archive: nothing planted in the directory is written through,
and the new file's mode follows the umask, never group- or other-writable."""

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from conftest import run

# The names the dumper used to choose (pid + counter), planted before it runs:
# a dump must not write through any of them.
PLANT_AND_DUMP = """
import os, sys, cds.dump
kind, victim = sys.argv[1], sys.argv[2]
for n in range(16):
    name = f".mod.img.tmp.{os.getpid()}.{n}"
    if kind == "symlink":
        os.symlink(victim, name)
    else:
        with open(name, "w") as f:
            f.write("planted")
        os.chmod(name, 0o666)
cds.dump.run_dump("mod.lst", "mod.img")
"""


def planted(ws):
    return sorted(p for p in ws.path.iterdir() if p.name.startswith(".mod.img.tmp."))


def test_planted_symlinks_are_not_written_through(ws):
    ws.write("m.py", "X = 1\n")
    ws.trace("-c", "import m")
    victim = ws.write("victim.txt", "precious\n")
    run("-c", PLANT_AND_DUMP, "symlink", victim, cwd=ws.path)
    assert victim.read_text() == "precious\n"
    assert ws.img.read_bytes().startswith(b"PyCDS\0\r\n")
    assert not ws.img.is_symlink()
    assert all(p.is_symlink() for p in planted(ws)) and len(planted(ws)) == 16


def test_planted_files_are_not_reused(ws):
    ws.write("m.py", "X = 1\n")
    ws.trace("-c", "import m")
    run("-c", PLANT_AND_DUMP, "file", "-", cwd=ws.path)
    files = planted(ws)
    assert len(files) == 16 and all(p.read_text() == "planted" for p in files)
    archive = ws.img.stat()
    assert all(p.stat().st_ino != archive.st_ino for p in files)
    assert stat.S_IMODE(archive.st_mode) & 0o022 == 0


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o644), (0o000, 0o644)])
def test_mode_follows_the_umask_without_group_or_other_write(ws, umask, mode):
    ws.write("m.py", "X = 1\n")
    ws.trace("-c", "import m")
    run("-c", f"import os, cds.dump; os.umask({umask}); cds.dump.run_dump('mod.lst', 'mod.img')", cwd=ws.path)
    assert stat.S_IMODE(ws.img.stat().st_mode) == mode


def test_root_dumping_into_a_sticky_directory(ws, request):
    """Another user plants symlinks at the names root's dump would have
    used in a world-writable sticky directory (/tmp): root's dump neither
    follows them nor fails."""
    if os.geteuid() != 0:
        pytest.skip("needs root to plant files as another user")
    # Under /tmp itself: the other user must reach the directory.
    shared = Path(tempfile.mkdtemp(prefix="cds-sticky-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(shared))
    shared.chmod(0o1777)
    ws.write("m.py", "X = 1\n")
    ws.trace("-c", "import m")
    victim = ws.write("victim.txt", "precious\n")
    prog = (
        "import os, sys, cds.dump\n"
        "shared, victim = sys.argv[1], sys.argv[2]\n"
        "me = os.getpid()\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    os.setgid(65534); os.setuid(65534)\n"
        "    try:\n"
        "        for n in range(16):\n"
        "            os.symlink(victim, os.path.join(shared, f'.mod.img.tmp.{me}.{n}'))\n"
        "    except PermissionError as e:\n"
        "        print('cannot plant:', e, flush=True)\n"
        "        os._exit(77)\n"
        "    os._exit(0)\n"
        "status = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])\n"
        "if status == 77:\n"
        "    sys.exit(0)\n"
        "assert status == 0, status\n"
        "cds.dump.run_dump('mod.lst', os.path.join(shared, 'mod.img'))\n"
    )
    proc = run("-c", prog, shared, victim, cwd=ws.path)
    if "cannot plant:" in proc.stdout:
        # Seen in a chroot whose root directory is mode 0700 (mktemp -d): uid
        # 65534 cannot even reach /tmp there.
        pytest.skip(f"another user cannot write to {shared} here: {proc.stdout.strip()}")
    assert victim.read_text() == "precious\n"
    img = shared / "mod.img"
    assert img.stat().st_uid == 0 and img.read_bytes().startswith(b"PyCDS\0\r\n")
    links = [p for p in shared.iterdir() if p.is_symlink()]
    assert len(links) == 16 and all(p.lstat().st_uid == 65534 for p in links)
