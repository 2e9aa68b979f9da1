"""`make altinstall-X.Y DESTDIR=...`: the staged tree is a whole cds
interpreter (the cds package and _cds included), still one after being
moved elsewhere, and its default archive, written in its final place,
serves a bare start."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PYTHON, STATS, VERSION, clean_env, stats_of, without_stats

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(PYTHON).resolve().parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if BUILD.parent != ROOT / "build" or not BUILD.name.startswith("python-"):
        pytest.skip(f"{PYTHON} is not a harness build under build/")
    ver = f"{VERSION[0]}.{VERSION[1]}"
    stage = tmp_path_factory.mktemp("stage")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYCDS", "MAKE"))}
    proc = subprocess.run(["make", "-s", "-C", str(ROOT), f"altinstall-{ver}", f"DESTDIR={stage}"],
                          env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Moved: as a package's files land in their place, or a tree is copied.
    moved = tmp_path_factory.mktemp("moved") / "opt"
    shutil.move(str(stage / "usr" / "local"), str(moved))
    return moved / "bin" / f"python{ver}"


def run(python, *args):
    proc = subprocess.run([str(python), *args], env=clean_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_the_moved_tree_is_a_cds_interpreter(installed):
    out = run(installed, "-c", "import sys, _cds, cds; print(sys.prefix); print(cds.stats()['archive'])").stdout
    prefix, archive = out.splitlines()
    assert prefix == str(installed.parent.parent) and archive == "None"


def test_its_default_archive_serves_a_bare_start(installed):
    where = run(installed, "-m", "cds", "where").stdout.strip()
    assert where.startswith(str(installed.parent.parent / "lib"))
    run(installed, "-m", "cds", "stdlib", "-q")
    proc = run(installed, "-c", "import json; print(json.dumps([1]))\n" + STATS)
    assert without_stats(proc.stdout) == "[1]" and proc.stderr == ""
    stats = stats_of(proc)
    assert stats["archive"] == where and "json.decoder" in stats["served"] and not stats["rejected"]
    off = stats_of(run(installed, "-X", "cds_mode=off", "-c", STATS))
    assert off["archive"] is None
