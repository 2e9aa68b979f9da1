"""marshal of archived objects. On 3.11, marshal.dumps() of archived code
gives the bytes it gives without cds (Python/marshal.c asks cds whether an
archived object is shared: patch 0006-marshal-cds-shared-refs). On 3.13
archived objects are immortal and marshal flags each as possibly shared,
so the bytes differ in those flags (docs/DESIGN.md); on both, what loads()
gives back is equal, and objects shared in the dumped graph stay shared."""

import shutil

import pytest

from conftest import DATA, STATS, STOCK, VERSION, stats_of, without_stats

same_bytes = pytest.mark.skipif(
    VERSION >= (3, 12) or STOCK,
    reason="3.12+: archived objects are immortal, marshal flags each (docs/DESIGN.md); a stock 3.11 lacks "
    "marshal's test for archived objects (patch 0006), so its bytes differ the same way (docs/STOCK.md)",
)

DUMPS = r'''
import hashlib, inspect, marshal, types, {modules}

def functions(module):
    for name, value in sorted(vars(module).items()):
        if isinstance(value, type):
            for attr, member in sorted(vars(value).items()):
                member = getattr(member, "__func__", member)
                if isinstance(member, types.FunctionType):
                    yield f"{{name}}.{{attr}}", member
        elif isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
            yield name, value

for module in ({modules},):
    for name, f in functions(module):
        data = marshal.dumps(f.__code__)
        assert marshal.loads(data) == f.__code__
        print(module.__name__, name, len(data), hashlib.sha256(data).hexdigest()[:16])
'''


def compare(ws, modules, program_extra=""):
    prog = DUMPS.format(modules=", ".join(modules)) + program_extra
    ws.archive("-c", prog)
    plain = ws.plain("-c", prog)
    cds = ws.replay("-c", prog + "\n" + STATS)
    served = stats_of(cds)["served"]
    assert all(m in served for m in modules), served
    assert cds.stderr == plain.stderr == ""
    lines = without_stats(cds.stdout).splitlines()
    assert len(lines) > 5
    assert lines == without_stats(plain.stdout).splitlines()


@same_bytes
def test_marshal_of_archived_functions_matches(ws):
    shutil.copy(DATA / "marshal_mod.py", ws.path)
    compare(ws, ["marshal_mod"])


@same_bytes
def test_marshal_of_stdlib_functions_matches(ws):
    compare(ws, ["json.decoder", "json.encoder", "textwrap", "fnmatch"])


@same_bytes
def test_nested_code_objects_match(ws):
    """A closure's code, its nested lambda's code (referenced once: no
    FLAG_REF) and a tuple of constants passed to marshal directly."""
    shutil.copy(DATA / "marshal_mod.py", ws.path)
    extra = (
        "import marshal_mod as m\n"
        "inner = m.nested(1)\n"
        "print(marshal.dumps(inner.__code__).hex())\n"
        "print(marshal.dumps(m.also_uses_shared.__code__.co_consts).hex())\n"
    )
    compare(ws, ["marshal_mod"], extra)


SHARING = r'''
import marshal, marshal_mod as m
for sample in [(m.TABLE, m.TABLE), (m.GREETING, m.GREETING), (m.TABLE[3], m.TABLE)]:
    back = marshal.loads(marshal.dumps(sample))
    print(back == sample, back[0] is back[1] if sample[0] is sample[1] else back[0] is back[1][3])
code = m.Widget.method.__code__
print(marshal.loads(marshal.dumps(code)) == code)
'''


def test_shared_objects_stay_shared_and_load_equal(ws):
    """An archived constant dumped twice in one graph is written once and
    loaded as one object (CPython's test_marshal InstancingTestCase)."""
    shutil.copy(DATA / "marshal_mod.py", ws.path)
    ws.archive("-c", SHARING)
    plain = ws.plain("-c", SHARING)
    cds = ws.replay("-c", SHARING + "\n" + STATS)
    assert "marshal_mod" in stats_of(cds)["served"]
    assert without_stats(cds.stdout) == plain.stdout.strip() == "True True\nTrue True\nTrue True\nTrue"
