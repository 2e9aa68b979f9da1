"""Names that start-up interns as static strs of the interpreter's own
image (3.13's `_Py_ID`, 3.11's deep-frozen modules' names) end up as those
strs in every process of the build: the dump writes their addresses into
the archive, so serving a module rewrites no slot for them
(docs/DESIGN.md, "Pooled names"). Observed in the archive's bytes and in a
serving process."""

import struct

import pytest

from conftest import MAPPINGS, PYTHON, STOCK, run

NAMES = ["os", "getcwd", "path", "join", "sep"]
USER = "import os\ndef where():\n    return os.path.join(os.getcwd(), os.sep)\n"
# Which of NAMES interning makes a str of the interpreter's executable.
PROBE = MAPPINGS + f"""
import sys
for name in {NAMES!r}:
    s = sys.intern(''.join(list(name)))
    print(name, id(s), archived(id(s), {PYTHON.rsplit('/', 1)[-1]!r}))
"""


def statics(ws):
    lines = [line.split() for line in run("-c", PROBE, cwd=ws.path).stdout.splitlines()]
    return {name: int(address) for name, address, static in lines if static == "True"}


def test_a_name_interned_as_a_static_str_is_written_as_its_address(ws):
    ws.write("user.py", USER)
    img = ws.archive("-c", "import user")
    found = statics(ws)
    if STOCK and not found:
        # pyenv's builds: PIE, with a shared libpython; their statics move
        # with ASLR and are not pre-written.
        pytest.skip("this stock interpreter's static strs are not in a non-PIE executable")
    # The interpreters cds builds are non-PIE (docs/PACKAGING.md), as
    # Debian's python3.11: the addresses are those of every process.
    assert found, "no name of the probe is a static str of the executable"
    data = img.read_bytes()
    for name, address in found.items():
        assert struct.pack("<Q", address) in data, name
    # Served, the code names exactly those strs.
    check = (
        "import sys, user\n"
        f"statics = {sorted(found)!r}\n"
        "names = user.where.__code__.co_names\n"
        "print(all(any(n is sys.intern(''.join(list(s))) for n in names) for s in statics), user.where())"
    )
    served = ws.replay("-c", check + "\nimport cds; print(cds.stats()['served'])")
    assert served.stdout.splitlines()[0] == ws.plain("-c", check).stdout.strip()
    assert served.stdout.splitlines()[0].startswith("True ") and "'user'" in served.stdout.splitlines()[1]
