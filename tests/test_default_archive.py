"""The default stdlib archive (`python -m cds stdlib`): written where the
interpreter looks when no archive is named, used without any option, never
in the way (`-X cds_mode=off`, `-X cds=`, a broken file: silent unless
`-X cds_verbose` asks), and the same bytes when written again.

The interpreter under test runs with PYTHONHOME at a directory of its own
whose stdlib entries link to the real ones, so the default archive is
written there, not into the build tree every other test runs from."""

import os
import sys

import pytest

from conftest import PYTHON, STATS, VERSION, clean_env, in_home as py, needs_patch, run, stats_of, without_stats

UNASKED = needs_patch(
    "the start-up hook that opens the default archive unasked (patch 0003; the stock hook starts only for a cds variable or option)"
)

PROG = "import json, textwrap; print(json.dumps(textwrap.wrap('a b', 1)))\n"


@pytest.fixture(scope="module")
def default(home):
    """The default archive, written once for the module's tests."""
    path = py(home, "-m", "cds", "where").stdout.strip()
    proc = py(home, "-m", "cds", "stdlib")
    assert f"cds: wrote {path}:" in proc.stdout
    # Not a terminal: no progress lines.
    assert "compiling" not in proc.stderr, proc.stderr
    return path


def test_where_is_beside_the_stdlib_pyc_files(home):
    tag = f"cpython-{VERSION[0]}{VERSION[1]}"
    lib = home / "lib" / f"python{VERSION[0]}.{VERSION[1]}"
    assert py(home, "-m", "cds", "where").stdout.strip() == f"{lib}/__pycache__/cds-stdlib.{tag}.img"


@UNASKED
def test_used_without_any_option(home, default):
    proc = py(home, "-c", PROG + STATS)
    assert without_stats(proc.stdout) == '["a", "b"]' and proc.stderr == ""
    stats = stats_of(proc)
    assert stats["archive"] == default
    assert {"json", "json.decoder", "textwrap"} <= set(stats["served"]) and not stats["rejected"]
    assert stats["stamped"]


def test_holds_the_stdlib_not_its_tests(home, default):
    info = py(home, "-m", "cds", "info", "--json", default).stdout
    import json

    names = {m["name"] for m in json.loads(info)["modules"]}
    assert {"json", "asyncio.events", "email.message", "encodings.utf_8"} <= names
    assert not any(n == "test" or n.startswith(("test.", "idlelib")) for n in names)


def test_off_turns_it_off_and_a_named_archive_layers_on_it(home, default, tmp_path):
    stats = stats_of(py(home, "-X", "cds_mode=off", "-c", PROG + STATS))
    assert stats["archive"] is None and stats["served"] == []
    lst, img = tmp_path / "app.lst", tmp_path / "app.img"
    py(home, f"-Xcds_trace={lst}", "-c", "import textwrap")
    # A whole archive (stdlib modules included) serves alone: its code
    # serials are the default archive's.
    py(home, "-m", "cds", "dump", "-q", "--whole", lst, img)
    stats = stats_of(py(home, f"-Xcds={img}", "-c", PROG + STATS))
    assert stats["archives"] == [str(img)]
    assert "textwrap" in stats["served"] and "json" not in stats["served"]
    # The usual dump leaves textwrap to the default archive, under the named one.
    py(home, "-m", "cds", "dump", "-q", lst, img)
    stats = stats_of(py(home, f"-Xcds={img}", "-c", PROG + STATS))
    assert stats["archives"] == [str(img), default]
    assert {"textwrap", "json"} <= set(stats["served"])
    import json

    assert json.loads(py(home, "-m", "cds", "info", "--json", img).stdout)["modules"] == []


def test_writing_it_again_gives_the_same_bytes(home, default, tmp_path):
    """Reproducible: another process, another working directory, another
    hash secret, the same bytes (no addresses, times or set orders that
    vary)."""
    before = open(default, "rb").read()
    other = tmp_path / "again.img"
    env = clean_env(PYTHONHOME=home, PYTHONHASHSEED="random")
    run("-m", "cds", "stdlib", "-q", "-o", other, env=env, cwd=tmp_path, timeout=300)
    assert other.read_bytes() == before
    py(home, "-m", "cds", "stdlib", "-q")
    assert open(default, "rb").read() == before


@UNASKED
def test_a_broken_default_archive_is_silent(home, default, tmp_path):
    good = open(default, "rb").read()
    try:
        with open(default, "r+b") as f:
            f.truncate(len(good) // 2)
        proc = py(home, "-c", PROG + STATS)
        assert without_stats(proc.stdout) == '["a", "b"]' and proc.stderr == ""
        assert stats_of(proc)["archive"] is None
        loud = py(home, "-X", "cds_verbose", "-c", PROG)
        assert loud.stderr.count("\n") == 1 and "default archive" in loud.stderr and "not used" in loud.stderr
    finally:
        py(home, "-m", "cds", "stdlib", "-q")
    assert open(default, "rb").read() == good
