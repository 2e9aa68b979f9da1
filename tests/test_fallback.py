"""Bad archives and changed sources never change what a program computes:
one warning line, then a normal import."""

import os
import struct
import time
from pathlib import Path

import pytest

from conftest import STATS, run, stats_of, without_stats

PROG = 'import json; print(json.dumps({"a": [1, 2.5, None]}))'
EXPECTED = '{"a": [1, 2.5, null]}'


def assert_falls_back(ws, img, reason_part):
    proc = ws.replay("-c", PROG + "\n" + STATS, img=img)
    assert without_stats(proc.stdout) == EXPECTED
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("cds: warning: cannot use archive") and str(img) in lines[0]
    assert reason_part in lines[0], lines[0]
    stats = stats_of(proc)
    assert stats["archive"] is None and stats["served"] == []


def test_missing_archive(ws):
    assert_falls_back(ws, ws.path / "nope.img", "No such file")


def test_empty_file(ws):
    (ws.path / "empty.img").write_bytes(b"")
    assert_falls_back(ws, ws.path / "empty.img", "empty")


def test_directory(ws):
    (ws.path / "dir.img").mkdir()
    assert_falls_back(ws, ws.path / "dir.img", "directory")


def test_fifo(ws):
    os.mkfifo(ws.path / "fifo.img")
    assert_falls_back(ws, ws.path / "fifo.img", "not a regular file")


def test_foreign_file(ws):
    (ws.path / "text.img").write_text("#!/bin/sh\necho not an archive\n" * 20)
    assert_falls_back(ws, ws.path / "text.img", "not a cds archive")


@pytest.mark.parametrize("cut", [16, 127, 128, 4096, -1])
def test_truncated_archive(ws, cut):
    data = ws.archive("-c", "import json").read_bytes()
    bad = ws.path / "cut.img"
    bad.write_bytes(data[:cut])
    assert_falls_back(ws, bad, "truncated")


@pytest.mark.parametrize("offset,reason", [(8, "format version"), (20, "checksum"), (60, "checksum"), (200, "checksum")])
def test_flipped_header_or_table_byte(ws, offset, reason):
    data = bytearray(ws.archive("-c", "import json").read_bytes())
    data[offset] ^= 0x5A
    bad = ws.path / "flip.img"
    bad.write_bytes(bytes(data))
    assert_falls_back(ws, bad, reason)


def test_flipped_object_byte_rejects_only_that_module(ws):
    img = ws.archive("-c", "import json")
    data = bytearray(img.read_bytes())
    # The last byte of json.decoder's hot objects: inside its checksummed
    # span, not padding.
    hot_start, hot_end, _, _ = module_spans(data)["json.decoder"]
    data[hot_end - 1] ^= 0xFF
    img.write_bytes(bytes(data))
    proc = ws.replay("-c", PROG + "\n" + STATS)
    assert without_stats(proc.stdout) == EXPECTED
    stats = stats_of(proc)
    assert list(stats["rejected"]) == ["json.decoder"], stats["rejected"]
    assert "checksum" in stats["rejected"]["json.decoder"]
    assert proc.stderr.count("not used") == 1 and "module json.decoder not used" in proc.stderr, proc.stderr
    assert {"json", "json.encoder", "json.scanner"} <= set(stats["served"])


def test_mode_on_exits_with_the_message(ws):
    proc = run("-Xcds=" + str(ws.path / "nope.img"), "-Xcds_mode=on", "-c", "print('ran')", cwd=ws.path, check=False)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("cds: error: cannot use archive") and len(proc.stderr.splitlines()) == 1


def test_mode_off_ignores_the_archive(ws):
    ws.archive("-c", "import json")
    proc = ws.replay("-Xcds_mode=off", "-c", PROG + "\n" + STATS)
    assert stats_of(proc)["served"] == [] and proc.stderr == ""


def test_changed_source_falls_back_for_that_module_only(ws):
    mod = ws.write("mymod.py", "VALUE = 1\n")
    ws.write("other.py", "VALUE = 2\n")
    ws.archive("-c", "import mymod, other")
    # Same size, new mtime.
    st = mod.stat()
    mod.write_text("VALUE = 3\n")
    os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    proc = ws.replay("-c", "import mymod, other; print(mymod.VALUE, other.VALUE)\n" + STATS)
    assert without_stats(proc.stdout) == "3 2"
    stats = stats_of(proc)
    assert "other" in stats["served"] and "mymod" not in stats["served"]
    assert "changed" in stats["rejected"]["mymod"]


def test_changed_size_and_deleted_source(ws):
    mod = ws.write("mymod.py", "VALUE = 1\n")
    gone = ws.write("gone.py", "VALUE = 2\n")
    ws.archive("-c", "import mymod, gone")
    time.sleep(0.01)
    mod.write_text("VALUE = 12345\n")
    gone.unlink()
    proc = ws.replay("-c", "import mymod; print(mymod.VALUE)\ntry:\n import gone\nexcept ImportError: print('gone')\n" + STATS)
    assert without_stats(proc.stdout) == "12345\ngone"
    stats = stats_of(proc)
    assert "changed" in stats["rejected"]["mymod"]
    assert "missing" in stats["rejected"]["gone"]


def test_archive_replaced_while_in_use_is_atomic(ws):
    """Dumping over an archive another process has mapped does not disturb it."""
    img = ws.archive("-c", "import json")
    prog = (
        "import json, subprocess, sys\n"
        "subprocess.run([sys.executable, '-m', 'cds', 'dump', 'mod.lst', 'mod.img'], check=True)\n"
        "import json.tool\n"
        "print(json.dumps([1]))\n" + STATS
    )
    proc = ws.replay("-c", prog)
    assert "[1]" in proc.stdout
    assert "json.decoder" in stats_of(proc)["served"]
    # No temporary file is left behind.
    assert sorted(p.name for p in ws.path.iterdir() if p.name.startswith(".")) == []


def sections(data):
    """(name, start, end) of each section, read from the header (docs/FORMAT.md)."""
    count, table, strings, strings_size, relocs, relocs_size, hot, hot_size, cold, cold_size = struct.unpack_from("<10I", data, 56)
    names, names_size = struct.unpack_from("<2I", data, 120)
    return [
        ("header", 0, table),
        ("table", table, strings),
        ("strings", strings, strings + strings_size),
        ("names", names, names + names_size),
        ("hot", hot, hot + hot_size),
        ("cold", cold, cold + cold_size),
        ("relocs", relocs, relocs + relocs_size),
    ]


def module_entry_size():
    """The module table entry size docs/FORMAT.md gives (core/tests/format.rs
    checks it against the code)."""
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "FORMAT.md").read_text()
    return int(re.search(r"^## Module table entry \((\d+) bytes\)", text, re.M).group(1))


def module_spans(data):
    """{name: (hot_start, hot_end, cold_start, cold_end)} of every module,
    read from the module table (docs/FORMAT.md)."""
    count, table, strings = struct.unpack_from("<3I", data, 56)
    entry_size = module_entry_size()
    spans = {}
    for i in range(count):
        entry = table + entry_size * i
        name_at, name_len = struct.unpack_from("<2I", data, entry)
        name = bytes(data[strings + name_at : strings + name_at + name_len]).decode()
        spans[name] = struct.unpack_from("<4I", data, entry + 40)
    return spans


def test_truncated_at_every_section_boundary(ws):
    data = ws.archive("-c", "import json").read_bytes()
    bad = ws.path / "cut.img"
    cuts = sorted({cut for _, start, end in sections(data) for cut in (start, end - 1) if 0 < cut < len(data)})
    # Every section but the header starts inside the file: at least 10 cuts.
    assert len(cuts) >= 10, cuts
    for cut in cuts:
        bad.write_bytes(data[:cut])
        assert_falls_back(ws, bad, "truncated")


def test_one_flipped_byte_in_every_section(ws):
    data = ws.archive("-c", "import json").read_bytes()
    bad = ws.path / "flip.img"
    # An archive of json has no empty section.
    assert all(end > start for _, start, end in sections(data)), sections(data)
    for name, start, end in sections(data):
        flipped = bytearray(data)
        flipped[(start + end) // 2] ^= 0x20
        bad.write_bytes(bytes(flipped))
        proc = ws.replay("-c", PROG + "\n" + STATS, img=bad)
        assert without_stats(proc.stdout) == EXPECTED, name
        lines = proc.stderr.splitlines()
        if name in ("header", "table", "strings"):
            assert len(lines) == 1 and "cannot use archive" in lines[0], (name, proc.stderr)
        elif name == "names":  # shared by every module: one line, then nothing is served
            assert len(lines) == 1 and "name pool checksum" in lines[0], (name, proc.stderr)
            assert stats_of(proc)["served"] == []
        else:  # one module fails its checksum; the others are still served
            rejected = stats_of(proc)["rejected"]
            assert len(lines) == len(rejected) == 1, (name, proc.stderr)
            assert "checksum" in lines[0] and "checksum" in next(iter(rejected.values()))
            assert len(stats_of(proc)["served"]) > 0


def test_unreadable_archive(ws):
    img = ws.archive("-c", "import json")
    img.chmod(0)
    try:
        if os.access(img, os.R_OK):
            pytest.skip("running as root: permissions do not apply")
        assert_falls_back(ws, img, "Permission denied")
    finally:
        img.chmod(0o644)


def test_loader_called_directly_checks_the_source(ws):
    """A get_code that does not follow the finder's check (a tool calling
    the loader later) checks the source itself."""
    mod = ws.write("mymod.py", "VALUE = 1\n")
    ws.archive("-c", "import mymod")
    prog = (
        "import importlib.util, os, time\n"
        "spec = importlib.util.find_spec('mymod')\n"  # checked, found in the archive
        "with open(spec.origin, 'w') as f: f.write('VALUE = 22\\n')\n"
        "code = spec.loader.get_code('mymod')\n"
        "ns = {}; exec(code, ns); print(ns['VALUE'])\n" + STATS
    )
    proc = ws.replay("-c", prog)
    assert without_stats(proc.stdout) == "22"
    assert "changed" in stats_of(proc)["rejected"]["mymod"]
