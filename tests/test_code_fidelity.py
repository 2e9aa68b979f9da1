"""A module served from the archive is indistinguishable from a normal import."""

import re
import shutil

from conftest import DATA, STATS, VERSION, stats_of, without_stats

DESCRIBE = r'''
import dis, inspect, io, sys, types

def walk(code):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from walk(c)

def describe(mod):
    top = mod.__spec__.loader.get_code(mod.__name__)
    for code in walk(top):
        attrs = {a: getattr(code, a) for a in dir(code)
                 if a.startswith("co_") and a != "co_lnotab" and not callable(getattr(code, a))}
        attrs["co_consts"] = tuple(c for c in code.co_consts if not isinstance(c, types.CodeType))
        print(code.co_qualname, re.sub(r"0x[0-9a-f]+", "0x?", repr(sorted(attrs.items()))))
        print(list(code.co_positions()))
        print(list(code.co_lines()))
    out = io.StringIO()
    dis.dis(top, file=out)
    print(re.sub(r"0x[0-9a-f]+", "0x?", out.getvalue()))
'''


def prepare(ws, name):
    shutil.copy(DATA / f"{name}.py", ws.path / f"{name}.py")
    ws.archive("-c", f"import {name}")
    assert name in ws.traced_names()


def same_output(ws, prog, name):
    plain = ws.plain("-c", prog)
    cds = ws.replay("-c", prog + "\n" + STATS)
    assert name in stats_of(cds)["served"], cds.stdout
    assert cds.stderr == plain.stderr == ""
    assert without_stats(cds.stdout) == without_stats(plain.stdout)
    return cds.stdout


def test_every_constant_kind_computes_the_same(ws):
    prepare(ws, "constants_mod")
    out = same_output(ws, "import constants_mod as m\nprint(m.summary())\nprint(m.identities())", "constants_mod")
    assert "(True, True, True, True, True, True, True, True)" in out


def test_code_attributes_positions_and_dis_are_identical(ws):
    prepare(ws, "constants_mod")
    prog = "import re\n" + DESCRIBE + "\nimport constants_mod\ndescribe(constants_mod)"
    out = same_output(ws, prog, "constants_mod")
    assert "co_filename" in out and "RETURN_VALUE" in out


def test_get_code_returns_the_archived_code_or_a_private_body(ws):
    prepare(ws, "constants_mod")
    prog = (
        "import constants_mod as m, sys\n"
        "get = lambda: m.__spec__.loader.get_code('constants_mod')\n"
        "a, b = get(), get()\n"
        "fn = lambda c: next(k for k in c.co_consts if getattr(k, 'co_name', '') == 'closure')\n"
        "print(a is b, fn(a) is fn(b), m.closure.__code__.co_filename == m.__file__)\n"
    )
    # A normal import unmarshals a new code object per call.
    assert ws.plain("-c", prog).stdout.strip() == "False False True"
    # cds serves the mapped one on 3.11; 3.12+ runs module bodies from
    # private copies (one per call, as a normal import) whose functions'
    # code objects are the archive's, shared.
    expected = "True True True" if VERSION < (3, 12) else "False True True"
    assert ws.replay("-c", prog).stdout.strip() == expected


def test_tracebacks_and_getsource(ws):
    prepare(ws, "fails_mod")
    prog = (
        "import traceback, inspect, fails_mod\n"
        "try:\n"
        "    fails_mod.outer()\n"
        "except ZeroDivisionError:\n"
        "    print(traceback.format_exc())\n"
        "print(inspect.getsource(fails_mod.helper))\n"
        "print(inspect.getsourcelines(fails_mod.outer)[1])\n"
    )
    out = same_output(ws, prog, "fails_mod")
    assert "return 1 / value" in out and "line 3, in helper" in out
    assert re.search(r"~~\^~~~~~", out)  # 3.11 fine-grained error locations survive


def test_package_with_submodules(ws):
    ws.write("pkg/__init__.py", "from . import sub\nVALUE = sub.f() + 1\n")
    ws.write("pkg/sub.py", "def f():\n    return 41\n")
    ws.write("pkg/inner/__init__.py", "")
    ws.write("pkg/inner/deep.py", "from .. import sub\nWHERE = __name__, __package__\n")
    prog = (
        "import pkg, pkg.inner.deep as d, importlib.util\n"
        "print(pkg.VALUE, d.WHERE)\n"
        "for m in (pkg, pkg.sub, pkg.inner, d):\n"
        "    s = m.__spec__\n"
        "    print(m.__name__, m.__file__, m.__cached__, getattr(m, '__path__', None), m.__package__,\n"
        "          s.origin, s.cached, s.parent, s.submodule_search_locations, s.has_location, type(s.loader).__name__)\n"
        "print(importlib.util.find_spec('pkg.inner.deep').origin)\n"
    )
    ws.archive("-c", "import pkg, pkg.inner.deep")
    assert {"pkg", "pkg.sub", "pkg.inner", "pkg.inner.deep"} <= set(ws.traced_names())
    plain = ws.plain("-c", prog)
    cds = ws.replay("-c", prog + STATS)
    assert without_stats(cds.stdout) == without_stats(plain.stdout)
    assert {"pkg", "pkg.sub", "pkg.inner", "pkg.inner.deep"} <= set(stats_of(cds)["served"])
    assert plain.stdout.startswith("42 ('pkg.inner.deep', 'pkg.inner')")
