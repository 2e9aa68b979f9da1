"""Pooled names (docs/DESIGN.md): a name that code outside the archive
interns first (a module imported without it, a C extension module as it
loads) becomes the archive's pooled str on 3.13 (patch 0009), so archived
objects naming it keep the address the dump wrote. Observed from inside a
real process: which str object the interpreter's interned dict holds, and
what the program computes, with the pool's index intact, emptied or
garbled."""

import struct

import pytest

from conftest import MAPPINGS, STATS, VERSION, needs_patch, stats_of, without_stats

pytestmark = [needs_patch("the interning hook (patch 0009)"), pytest.mark.skipif(
    VERSION < (3, 13), reason="3.11 keeps its interned dict private and has no interning hook (DESIGN.md)"
)]

NAME = "cds_pooled_probe_attribute"
# `outside` is not archived (written after the dump) and names NAME first;
# `inside` is archived and names it too.
INSIDE = f"class Box:\n    {NAME} = 41\ndef read(box):\n    return box.{NAME} + 1\n"
OUTSIDE = f"def poke(box):\n    box.{NAME} = 1\n    return box.{NAME}\n"
PROGRAM = "import outside, inside\nprint(inside.read(inside.Box()), outside.poke(inside.Box()))"
EXPECTED = "42 1"
# The probe builds the name at run time: a literal would be a constant of
# the program, interned when the program is compiled, before any import.
PROBE = MAPPINGS + """
import sys
def interned(*parts):
    return sys.intern('_'.join(parts))
print('POOLED', archived(id(interned(*NAME_PARTS)), 'mod.img'))
"""


def probe(name):
    return f"NAME_PARTS = {name.split('_')!r}\n" + PROBE


def archive_with_outside_module(ws):
    """An archive of `inside`, then `outside` written beside it."""
    ws.write("inside.py", INSIDE)
    ws.archive("-c", "import inside")
    ws.write("outside.py", OUTSIDE)
    return ws.img


def pooled(proc):
    line = next(l for l in proc.stdout.splitlines() if l.startswith("POOLED "))
    return line.split()[1] == "True"


def index_range(img):
    """Byte range of the pool's index (docs/FORMAT.md header)."""
    data = img.read_bytes()
    start, slots = struct.unpack_from("<II", data, 148)
    return start, start + slots * 8


def test_a_name_first_interned_outside_the_archive_is_the_archives(ws):
    archive_with_outside_module(ws)
    proc = ws.replay("-c", PROGRAM + "\n" + probe(NAME) + STATS)
    assert without_stats(proc.stdout).splitlines()[0] == EXPECTED
    assert pooled(proc), proc.stdout
    stats = stats_of(proc)
    assert "inside" in stats["served"] and "outside" not in stats["served"]
    assert proc.stderr == ""
    # Without the archive the interpreter keeps its own str.
    plain = ws.plain("-c", PROGRAM + "\n" + probe(NAME))
    assert plain.stdout.splitlines()[0] == EXPECTED and not pooled(plain)


def test_a_c_extension_modules_name_is_the_archives(ws):
    # _asyncio interns its getset names ('_callbacks', ...) when it loads;
    # importing it before anything archived names them leaves only the hook.
    ws.write("inside.py", "def callbacks(future):\n    return future._callbacks\n")
    ws.archive("-c", "import inside")
    program = "import _asyncio, inside\n" + probe("_callbacks")
    assert pooled(ws.replay("-c", program))
    assert not pooled(ws.plain("-c", program))


@pytest.mark.parametrize("damage", ["empty", "garbled"])
def test_a_damaged_index_costs_the_name_not_the_result(ws, damage):
    img = archive_with_outside_module(ws)
    start, end = index_range(img)
    assert end > start
    data = bytearray(img.read_bytes())
    if damage == "empty":
        data[start:end] = bytes(end - start)
    else:
        # Every used slot keeps its tag but points 16 bytes further: into
        # the middle of its entry, or at the next entry (another name).
        for at in range(start, end, 8):
            tag, entry = struct.unpack_from("<II", data, at)
            if entry:
                struct.pack_into("<II", data, at, tag, entry + 1)
    img.write_bytes(bytes(data))  # the index is not checksummed: the archive still serves
    proc = ws.replay("-c", PROGRAM + "\n" + probe(NAME) + STATS)
    assert without_stats(proc.stdout).splitlines()[0] == EXPECTED
    assert "inside" in stats_of(proc)["served"]
    assert proc.stderr == ""
    if damage == "empty":
        assert not pooled(proc)


def test_off_offers_no_pool(ws):
    archive_with_outside_module(ws)
    proc = ws.replay("-Xcds_mode=off", "-c", PROGRAM + "\n" + probe(NAME))
    assert proc.stdout.splitlines()[0] == EXPECTED and not pooled(proc)


def test_code_compiled_in_a_serving_process_marshals_as_without(ws):
    # The archive pools 'Outer.Inner' (a qualified name); compiling the same
    # class shares that str between the class body's co_qualname and its
    # constants. Interning must leave it shared, so the marshalled code is
    # the bytes a process without the archive writes.
    source = "class Outer:\n    class Inner:\n        def method(self):\n            return self.cds_pooled_probe_attribute\n"
    ws.write("inside.py", source)
    ws.archive("-c", "import inside")
    program = (
        "import marshal, hashlib\n"
        f"code = compile({source!r}, 'other.py', 'exec')\n"
        "print('MARSHAL', hashlib.sha256(marshal.dumps(code)).hexdigest())\n"
        "import inside\n"
    )
    served = ws.replay("-c", program + STATS)
    assert "inside" in stats_of(served)["served"]
    plain = ws.plain("-c", program)
    marshalled = [next(l for l in p.stdout.splitlines() if l.startswith("MARSHAL ")) for p in (served, plain)]
    assert marshalled[0] == marshalled[1]


def test_a_name_the_program_interned_first_is_the_programs_everywhere(ws):
    # The program's own constant is interned when it is compiled, before
    # `inside` is served: the archive's entry cannot be the interned str, so
    # every archived slot naming it must be switched to the program's (the
    # stamped fast path interns each listed name once and falls back to the
    # records for this one).
    ws.write("inside.py", INSIDE)
    ws.archive("-c", "import inside")
    program = (
        f"name = {NAME!r}\n"
        "import inside\n"
        "key = next(k for k in vars(inside.Box) if k == name)\n"
        "print(key is name, inside.read(inside.Box()))\n"
    )
    proc = ws.replay("-c", program + STATS)
    assert without_stats(proc.stdout) == "True 42"
    assert "inside" in stats_of(proc)["served"] and stats_of(proc)["stamped"]
    assert ws.plain("-c", program).stdout == "True 42\n"
