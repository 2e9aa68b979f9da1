"""Where the dump lays a module's objects out follows what importing it
writes on each version (docs/PERFORMANCE.md): on 3.11, whose refcounts are
written on every INCREF, defining a function writes its docstring and
running a body writes the constants it loads, so both go with the written
objects and the cold region keeps what only running the functions touches;
on 3.13 (immortal objects, bodies run from copies) all three stay cold.
Observed through `python -m cds info`'s per-module bytes."""

import json

from conftest import STATS, VERSION, run, stats_of, without_stats

LONG = 3000
# Not identifiers (spaces): the compiler does not intern them, so they are
# module constants, not pooled names.
SOURCE = f'''
MESSAGE = "{'m ' * (LONG // 2)}"

def documented():
    """{'d ' * (LONG // 2)}"""
    return 1

def talkative():
    return "{'t ' * (LONG // 2)}"
'''


def test_what_importing_writes_is_laid_out_with_the_written_objects(ws):
    ws.write("shapes_mod.py", SOURCE)
    img = ws.archive("-c", "import shapes_mod")
    info = json.loads(run("-m", "cds", "info", "--json", img).stdout)
    cold = next(m for m in info["modules"] if m["name"] == "shapes_mod")["cold"]
    if VERSION < (3, 12):
        # Only the function's own constant, which no import touches.
        assert LONG <= cold < 2 * LONG, cold
    else:
        assert cold >= 3 * LONG, cold
    program = "import shapes_mod as m\nprint(len(m.MESSAGE), len(m.documented.__doc__), len(m.talkative()))\n"
    proc = ws.replay("-c", program + STATS)
    assert without_stats(proc.stdout) == f"{LONG} {LONG} {LONG}"
    assert "shapes_mod" in stats_of(proc)["served"]
