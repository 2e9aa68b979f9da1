"""Start-up names (docs/DESIGN.md): the names the interpreter interns during
its own start-up are laid out first in an archive's name pool, and a 3.13
process interns them from the archive before the interpreter's own, which
then adopts the archive's strs (patch 0008). Observed from inside a real
process: which str object the interpreter's own tables hold."""

import re
import struct

import pytest

from conftest import MAPPINGS, STATS, VERSION, clean_env, needs_patch, run, stats_of, without_stats

pytestmark = [needs_patch("the start-up names hook (patch 0008)"), pytest.mark.skipif(
    VERSION < (3, 13), reason="3.11 keeps its interned dict private and has no start-up hook (DESIGN.md)"
)]

PROGRAM = "import json; print(json.dumps({'a': [1, None]}))"
EXPECTED = '{"a": [1, null]}'

# Where each object lives: in the mapping of the archive, or not. `split`
# is the key the interpreter put into str's type dict while readying its
# builtin types, and `ValueError` the name its builtins module was given:
# both long before `_cds` exists, and both named by archived modules.
# (`join` would not do: it is one of 3.13's static `_Py_ID` strings.)
PROBE = MAPPINGS + """
split = next(k for k in vars(str) if k == 'split')
value_error = next(k for k in vars(__builtins__) if k == 'ValueError')
print('ADOPTED', archived(id(split), SUFFIX), archived(id(value_error), SUFFIX), len(list(mappings(SUFFIX))))
"""


def probe(suffix):
    return f"SUFFIX = {suffix!r}\n" + PROBE


def adopted(proc):
    """(str.split archived, ValueError archived, mappings of the archive)."""
    line = next(l for l in proc.stdout.splitlines() if l.startswith("ADOPTED "))
    split, value_error, count = line.split()[1:]
    return split == "True", value_error == "True", int(count)


def startup_range(img):
    """(start, size) of the pool's start-up names (docs/FORMAT.md header)."""
    data = img.read_bytes()
    names, = struct.unpack_from("<I", data, 120)
    startup, = struct.unpack_from("<I", data, 144)
    return names, startup


def test_the_dump_lays_the_start_up_names_out_first(ws):
    img = ws.archive("-c", PROGRAM)
    names, startup = startup_range(img)
    assert startup > 0, "no start-up names in the archive"
    pool = img.read_bytes()[names:names + startup]
    # Names the interpreter interns before importlib runs, as str data.
    for name in (b"ValueError", b"split"):
        assert name in pool, name


def test_the_interpreter_adopts_the_archives_names(ws):
    ws.archive("-c", PROGRAM)
    proc = ws.replay("-c", PROGRAM + "\n" + probe("mod.img") + STATS)
    assert without_stats(proc.stdout).splitlines()[0] == EXPECTED
    assert adopted(proc) == (True, True, 1)
    assert "json" in stats_of(proc)["served"] and proc.stderr == ""
    # Without the archive, the same program: the interpreter's own strs.
    plain = ws.plain("-c", PROGRAM + "\n" + probe("mod.img"))
    assert adopted(plain) == (False, False, 0)
    # -X cds_verbose=2 says how many.
    verbose = ws.replay("-Xcds_verbose=2", "-c", "pass").stderr
    counts = re.findall(r"^cds: opened \S*mod\.img: .*, (\d+) start-up names interned first$", verbose, re.M)
    assert counts and int(counts[0]) > 100, verbose


def test_the_same_options_from_the_environment_and_paths_with_v(ws):
    ws.archive("-c", PROGRAM)
    via_env = run("-c", probe("mod.img"), cwd=ws.path, env=clean_env(PYTHONCDS="mod.img"))
    assert adopted(via_env) == (True, True, 1)
    tagged = ws.path / f"mod.cpython-{VERSION[0]}{VERSION[1]}.img"
    ws.img.rename(tagged)
    (ws.path / "mod.img.verified").unlink(missing_ok=True)
    via_tag = ws.plain("-Xcds=mod.%v.img", "-c", probe(tagged.name))
    assert adopted(via_tag) == (True, True, 1)
    # -E: the variable does not count, then or later.
    ignored = run("-E", "-c", probe(tagged.name), cwd=ws.path, env=clean_env(PYTHONCDS=tagged.name))
    assert adopted(ignored) == (False, False, 0)


def test_off_and_a_damaged_pool_intern_nothing_early(ws):
    img = ws.archive("-c", PROGRAM)
    off = ws.replay("-Xcds_mode=off", "-c", probe("mod.img"))
    assert adopted(off) == (False, False, 0)

    names, startup = startup_range(img)
    data = bytearray(img.read_bytes())
    data[names + startup // 2] ^= 0xFF  # inside a start-up name, checksum left stale
    img.write_bytes(bytes(data))
    (ws.path / "mod.img.verified").unlink(missing_ok=True)
    proc = ws.replay("-c", PROGRAM + "\n" + probe("mod.img"))
    assert proc.stdout.splitlines()[0] == EXPECTED
    assert adopted(proc)[:2] == (False, False)
    assert "name pool" in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
