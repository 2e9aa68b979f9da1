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

# docs/FORMAT.md: header and module table entry fields used here.
MODULE_COUNT, MODULE_TABLE, STRINGS, RELOCS = 56, 60, 64, 72
ENTRY_SIZE, NAME, NAME_LEN, HOT_START, COLD_END, RELOC_START, RELOC_COUNT = 104, 0, 4, 40, 52, 56, 60
RELOC_SIZE, KIND_OBJECT = 12, 1


@pytest.fixture(scope="module")
def reseal():
    """The cds-reseal tool (make test builds it and names it in CDS_RESEAL)."""
    tool = os.environ.get("CDS_RESEAL")
    if not tool:
        subprocess.run(["cargo", "build", "-q", "-p", "cds-testkit", "--bin", "cds-reseal"], cwd=ROOT, check=True)
        tool = str(ROOT / "target" / "debug" / "cds-reseal")
    return tool


def u32(b, at):
    return struct.unpack_from("<I", b, at)[0]


def module_entry(b, name):
    """The table entry offset of module `name`."""
    table, strings = u32(b, MODULE_TABLE), u32(b, STRINGS)
    for i in range(u32(b, MODULE_COUNT)):
        e = table + i * ENTRY_SIZE
        start = strings + u32(b, e + NAME)
        if b[start : start + u32(b, e + NAME_LEN)] == name.encode():
            return e
    raise AssertionError(f"{name} not in the archive")


def relocations(b, entry):
    """(record offset, slot, target, kind) of the module's relocation records."""
    first = u32(b, RELOCS) + u32(b, entry + RELOC_START) * RELOC_SIZE
    for i in range(u32(b, entry + RELOC_COUNT)):
        at = first + i * RELOC_SIZE
        yield (at, *struct.unpack_from("<III", b, at))


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


def first_object_relocation(b):
    """(record offset, slot, target) of forged_mod's first Object relocation."""
    record, slot, target, _ = next(r for r in relocations(b, module_entry(b, "forged_mod")) if r[3] == KIND_OBJECT)
    return record, slot, target


@pytest.mark.parametrize(
    "field,value,why",
    [
        # The slot moved into the MARKER's characters: its field keeps the
        # file's value, and the characters would get a pointer.
        (0, lambda b, slot, target: (b.find(MARKER_BYTES) + 7) & ~7, "relocation"),
        # The target moved inside an object: still in the module, not an object start.
        (4, lambda b, slot, target: target + 16, "points at no object"),
    ],
    ids=["slot-without-record", "target-inside-an-object"],
)
def test_forged_relocation(ws, reseal, field, value, why):
    img = archive(ws)

    def edit(b):
        record, slot, target = first_object_relocation(b)
        struct.pack_into("<I", b, record + field, value(b, slot, target))

    forge(img, edit, reseal)
    assert_refused(ws, why)


def test_resealed_unchanged_archive_still_serves(ws, reseal):
    """The tool itself changes nothing in an intact archive (so the tests above
    are refused for their edit, not for the resealing)."""
    img = archive(ws)
    before = img.read_bytes()
    forge(img, lambda b: None, reseal)
    assert img.read_bytes() == before
    assert "forged_mod" in stats_of(ws.replay("-c", PROG))["served"]
