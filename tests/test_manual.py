"""PYCDSMODE=MANUALLY: nothing starts by itself; the program calls
cds.trace(list) / cds.share(archive)."""

from conftest import STATS, clean_env, needs_patch, run, stats_of

MANUAL = clean_env(PYCDSMODE="MANUALLY")


def manual(ws, program, **env):
    return run("-c", program, env=clean_env(PYCDSMODE="MANUALLY", **env), cwd=ws.path)


def test_manually_starts_nothing(ws):
    img = ws.archive("-c", "import json")
    proc = manual(ws, "import json\n" + STATS, PYCDSARCHIVE=img, PYCDSLIST=ws.path / "x.lst")
    stats = stats_of(proc)
    assert stats["archive"] is None and stats["served"] == [] and not stats["tracing"]
    assert not (ws.path / "x.lst").exists()


@needs_patch("importlib's own cds globals (patch 0003)")
def test_default_loaders_are_known_even_when_cds_is_off(ws):
    proc = manual(ws, "import _frozen_importlib_external as e; print(e._cds, bool(e._cds_default_loaders))")
    assert proc.stdout == "None True\n"


def test_trace_then_share_in_a_later_process(ws):
    ws.write("mine.py", "import json\nX = json.dumps([1])\n")
    manual(ws, f"import cds\nassert cds.trace({str(ws.lst)!r})\nimport mine")
    names = ws.traced_names()
    assert "mine" in names and "json.decoder" in names and "cds" not in names
    ws.dump()
    proc = manual(ws, f"import cds\nassert cds.share({str(ws.img)!r})\nimport mine\nprint(mine.X)\n" + STATS)
    assert proc.stdout.startswith("[1]\n")
    stats = stats_of(proc)
    assert stats["archive"] == str(ws.img)
    assert {"mine", "json", "json.decoder"} <= set(stats["served"])


def test_trace_then_share_in_one_process(ws):
    ws.write("first.py", "X = 1\n")
    ws.write("second.py", "Y = 2\n")
    program = f"""
import cds, subprocess, sys
cds.trace({str(ws.lst)!r})
import first
subprocess.run([sys.executable, "-m", "cds", "dump", {str(ws.lst)!r}, {str(ws.img)!r}], check=True,
               stdout=subprocess.DEVNULL)
print(cds.share({str(ws.img)!r}))
import second  # not traced before the dump: imported normally
print(first.X, second.Y)
""" + STATS
    proc = manual(ws, program)
    assert proc.stdout.startswith("True\n1 2\n")
    stats = stats_of(proc)
    # first was imported before sharing: it stays as it was loaded.
    assert stats["archive"] == str(ws.img) and "first" not in stats["served"]
    assert stats["tracing"]


def test_share_serves_only_what_is_imported_after(ws):
    img = ws.archive("-c", "import json")
    proc = manual(ws, f"import json, cds\ncds.share({str(img)!r})\nimport json.tool\n" + STATS)
    served = stats_of(proc)["served"]
    assert "json.decoder" not in served  # imported before the call


def test_share_twice(ws):
    img = ws.archive("-c", "import json")
    other = ws.path / "other.img"
    other.write_bytes(img.read_bytes())
    program = f"""
import cds
print(cds.share({str(img)!r}), cds.share({str(img)!r}))
try:
    cds.share({str(other)!r})
except RuntimeError as e:
    print("RuntimeError", e)
"""
    proc = manual(ws, program)
    assert proc.stdout == f"True True\nRuntimeError cds is already serving from {img}\n"
    assert proc.stderr == ""


def test_trace_twice(ws):
    program = f"""
import cds
print(cds.trace({str(ws.lst)!r}), cds.trace({str(ws.lst)!r}))
try:
    cds.trace("elsewhere.lst")
except RuntimeError as e:
    print("RuntimeError", e)
"""
    assert manual(ws, program).stdout == f"True True\nRuntimeError cds is already tracing into {ws.lst}\n"


def test_share_of_a_bad_archive_warns_once_and_imports_normally(ws):
    bad = ws.path / "bad.img"
    bad.write_text("not an archive\n" * 50)
    proc = manual(ws, f"import cds\nprint(cds.share({str(bad)!r}))\nimport json\nprint(json.dumps(1))\n" + STATS)
    assert proc.stdout.startswith("False\n1\n")
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cds: warning: cannot use archive {bad}: ")
    assert stats_of(proc)["archive"] is None


def test_share_of_a_bad_archive_under_mode_on_raises(ws):
    bad = ws.path / "bad.img"
    bad.write_text("not an archive\n" * 50)
    program = f"""
import cds
try:
    cds.share({str(bad)!r})
except RuntimeError as e:
    print("RuntimeError", e)
"""
    proc = run("-Xcds_mode=on", "-c", program, env=MANUAL, cwd=ws.path)
    assert proc.stdout.startswith(f"RuntimeError cds: error: cannot use archive {bad}: ")
    assert proc.stderr == ""


def test_share_under_mode_off_does_nothing(ws):
    img = ws.archive("-c", "import json")
    proc = run("-Xcds_mode=off", "-c", f"import cds\nprint(cds.share({str(img)!r}))\n" + STATS, env=MANUAL)
    assert proc.stdout.startswith("False\n") and stats_of(proc)["archive"] is None
