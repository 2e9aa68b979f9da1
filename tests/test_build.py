"""The interpreter under test belongs to this checkout (harness/build.sh):
its tree is under build/, its Lib/cds is this checkout's pylib/cds and its
core library is the one this checkout's cargo built, so two clones or
worktrees never test each other's code."""

import os
from pathlib import Path

import pytest

from conftest import PYTHON, needs_patch

ROOT = Path(__file__).resolve().parent.parent
TREE = Path(PYTHON).resolve().parent

pytestmark = [
    pytest.mark.skipif("CDS_PYTHON" not in os.environ, reason="needs the harness's interpreter (make test)"),
    needs_patch("a build tree of this checkout"),
]


def test_tree_is_inside_this_checkout():
    assert TREE.parent == ROOT / "build", f"{PYTHON} resolves to {TREE}, outside {ROOT / 'build'}"
    assert not (ROOT / "build" / TREE.name).is_symlink()


def test_lib_cds_is_this_checkouts_pylib():
    ours = sorted(p.relative_to(ROOT / "pylib" / "cds") for p in (ROOT / "pylib" / "cds").rglob("*.py"))
    installed = sorted(p.relative_to(TREE / "Lib" / "cds") for p in (TREE / "Lib" / "cds").rglob("*.py"))
    assert ours and installed == ours
    for rel in ours:
        assert (TREE / "Lib" / "cds" / rel).read_bytes() == (ROOT / "pylib" / "cds" / rel).read_bytes(), rel


def test_core_library_is_this_checkouts_build():
    built = ROOT / "target" / TREE.name / "release" / "libcds_core.a"
    linked = TREE / "Modules" / "cds" / "libcds_core.a"
    assert built.read_bytes() == linked.read_bytes()
    # python was linked after the library it contains was put in place.
    assert (TREE / "python").stat().st_mtime >= linked.stat().st_mtime


def test_build_key_names_the_build_dependencies():
    key = (TREE / ".cds-key").read_text().splitlines()
    packages = {line.split()[1] for line in key if line.startswith("package ")}
    # All but those only the stock-interpreter tests need (not part of the key).
    listed = {line.split()[0] for line in (ROOT / "harness" / "deps.txt").read_text().splitlines()
              if line.strip() and not line.lstrip().startswith("#") and line.split()[1] != "stock"}
    assert packages == listed
    assert any(line.startswith("tarball ") for line in key) and any(line.startswith("patches ") for line in key)


@pytest.mark.parametrize("version", sorted(p.name for p in (ROOT / "patches").iterdir() if (p / "series").exists()))
def test_every_patch_has_its_dep3_header(version):
    """Each patch of the series starts with the DEP-3 fields packagers read,
    and says how it applies after Debian's own series (make check-debian-series)."""
    series = [l.split()[0] for l in (ROOT / "patches" / version / "series").read_text().splitlines()
              if l.strip() and not l.startswith("#")]
    assert series
    for name in series:
        header = (ROOT / "patches" / version / name).read_text().split("\n\n", 1)[0]
        fields = {line.split(":", 1)[0] for line in header.splitlines() if line and not line.startswith(" ")}
        assert {"Description", "Author", "Forwarded", "Last-Update", "X-Debian-Series"} <= fields, (name, fields)
        assert "built with its configure flags" in header, name
