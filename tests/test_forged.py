"""Archives edited by someone who can write them, checksums recomputed
(checksums are not authenticity: docs/DESIGN.md, trust model). The shape
check before relocation refuses the module, which is then imported
normally: the program computes what it computes without cds, and nothing
reads past an object or follows a pointer the archive did not relocate."""

import os
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import STATS, VERSION, stats_of, without_stats

ROOT = Path(__file__).resolve().parent.parent

MODULE = '''
MARKER = "forged-constant-0123456789abcdef"
def value():
    return len(MARKER), MARKER[:6]
'''
MARKER_BYTES = b"forged-constant-0123456789abcdef\0"
PROG = "import forged_mod\nprint(forged_mod.value())\n" + STATS

# docs/FORMAT.md: the Object relocation kind.
KIND_OBJECT = 1


@pytest.fixture(scope="module")
def reseal():
    """The cds-reseal tool (make test builds it and names it in CDS_RESEAL)."""
    tool = os.environ.get("CDS_RESEAL")
    if not tool:
        subprocess.run(["cargo", "build", "-q", "-p", "cds-testkit", "--bin", "cds-reseal"], cwd=ROOT, check=True)
        tool = str(ROOT / "target" / "debug" / "cds-reseal")
    return tool


def relocations(reseal, img, module):
    """[slot, target, kind] of each of the module's relocation records (the
    stream is decoded by cds-reseal, with the core's own decoder)."""
    out = subprocess.run([reseal, str(img), "--relocs", module], check=True, capture_output=True, text=True).stdout
    return [[int(n) for n in line.split()] for line in out.splitlines()]


def set_relocations(reseal, img, module, records):
    """Replaces the module's records (re-encoded, streams after it moved, resealed)."""
    text = "".join(f"{slot} {target} {kind}\n" for slot, target, kind in records)
    subprocess.run([reseal, str(img), "--set-relocs", module], check=True, input=text, text=True)


def archive(ws):
    ws.write("forged_mod.py", MODULE)
    img = ws.archive("-c", "import forged_mod")
    assert "forged_mod" in stats_of(ws.replay("-c", PROG))["served"]
    return img


def forge(img, edit, reseal):
    b = bytearray(img.read_bytes())
    edit(b)
    img.write_bytes(b)
    subprocess.run([reseal, str(img)], check=True)


def assert_refused(ws, why):
    plain = ws.plain("-c", PROG)
    cds = ws.replay("-c", PROG)
    assert without_stats(cds.stdout) == without_stats(plain.stdout) == "(32, 'forged')"
    stats = stats_of(cds)
    assert "forged_mod" not in stats["served"]
    assert why in stats["rejected"]["forged_mod"], stats["rejected"]
    # One warning line naming the module, nothing else.
    assert cds.stderr.count("\n") == 1 and "forged_mod" in cds.stderr, cds.stderr


def str_length_field(b):
    """Offset of the length field of the archived MARKER str (ASCII compact:
    the characters follow the PyASCIIObject header, whose length is at 16)."""
    data = b.find(MARKER_BYTES)
    assert data > 0 and b.find(MARKER_BYTES, data + 1) == -1
    header = 40 if VERSION >= (3, 12) else 48  # 3.11 keeps wstr in the header
    return data - header + 16


# A length that still fits its span (33) is a content edit, like editing a
# constant in a .pyc: memory-safe, and not what the shape check is for.
@pytest.mark.parametrize("length", [2**40, 2**20, -1])
def test_forged_str_length(ws, reseal, length):
    img = archive(ws)

    def edit(b):
        at = str_length_field(b)
        assert struct.unpack_from("<q", b, at)[0] == 32
        struct.pack_into("<q", b, at, length)

    forge(img, edit, reseal)
    assert_refused(ws, "exceeds its span")


@pytest.mark.parametrize(
    "field,value,why",
    [
        # The slot moved into the MARKER's characters: its field keeps the
        # file's value, and the characters would get a pointer.
        (0, lambda b, slot, target: (b.find(MARKER_BYTES) + 7) & ~7, "relocation"),
        # The target moved inside an object: still in the module, not an object start.
        (1, lambda b, slot, target: target + 16, "points at no object"),
    ],
    ids=["slot-without-record", "target-inside-an-object"],
)
def test_forged_relocation(ws, reseal, field, value, why):
    img = archive(ws)

    records = relocations(reseal, img, "forged_mod")
    record = next(r for r in records if r[2] == KIND_OBJECT)
    record[field] = value(img.read_bytes(), *record[:2])
    set_relocations(reseal, img, "forged_mod", records)
    assert_refused(ws, why)


def test_resealed_unchanged_archive_still_serves(ws, reseal):
    """The tool itself changes nothing in an intact archive (so the tests above
    are refused for their edit, not for the resealing)."""
    img = archive(ws)
    before = img.read_bytes()
    forge(img, lambda b: None, reseal)
    assert img.read_bytes() == before
    assert "forged_mod" in stats_of(ws.replay("-c", PROG))["served"]


SET_MODULE = '''
def member(x):
    return x in {"a", "b"}  # a frozenset constant
def kind(x):
    consts = [type(c).__name__ for c in member.__code__.co_consts if isinstance(c, (tuple, frozenset))]
    return consts, member(x)
'''


def test_records_that_need_work_outside_the_first_stream_are_all_read(ws, reseal):
    """A module's records that need work in every process (names, frozensets,
    code state) are its first stream, the only one a stamped process at the
    preferred base reads (docs/FORMAT.md). An archive whose first stream
    lacks them (here: all records moved to the second, as cds-reseal writes
    them) is restamped without the anchor and not as `internal` either, so
    every process reads every stream: the frozenset constant is still built."""
    ws.write("set_mod.py", SET_MODULE)
    img = ws.archive("-c", "import set_mod")
    prog = "import set_mod\nprint(set_mod.kind('a'))\n" + STATS
    set_relocations(reseal, img, "set_mod", relocations(reseal, img, "set_mod"))
    verify = ws.plain("-m", "cds", "verify", img)
    assert verify.returncode == 0, verify.stderr
    stamp = (ws.path / "mod.img.verified").read_text().splitlines()
    assert stamp[-2:] == ["anchor none", "internal no"], stamp
    proc = ws.replay("-c", prog)
    assert without_stats(proc.stdout) == "(['frozenset'], True)" and proc.stderr == ""
    stats = stats_of(proc)
    assert "set_mod" in stats["served"] and stats["stamped"], stats
