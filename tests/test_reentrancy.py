"""Python that runs while cds is busy may import, i.e. call cds again.

Allocation can run a collection (gc.callbacks, finalizers, weakref
callbacks); imports raise audit events. cds must hold no lock while it calls
into the interpreter: a nested import either is served (a module already
prepared) or imports normally (one being prepared), and the program computes
what it computes without cds. Every run has a timeout, so a deadlock fails.

To hit the window exactly, the hooks act only when the interrupted Python
frame is importlib's `_cds_find_spec` (on a stock interpreter, the same
function of the `cds` package) inside its `_cds.find(...)` call: the
archived module is being looked up and fixed up (building its frozensets
allocates GC objects). On 3.11 a collection runs inside that allocation; on
3.13 collections wait for the eval loop, so the window is never hit there
and the tests check only that the program behaves.

A stock interpreter's hook fixes the modules of an archive named at
start-up up as it starts (`cds._start`), before any hook of the program:
there the program names the archive with `cds.share()`, which fixes each
module up at its first import, and the last test reaches the start-up
window from a `.pth` file that site runs first.
"""

from pathlib import Path

import pytest

from conftest import STATS, STOCK, VERSION, clean_env, run, stats_of, without_stats

# Modules with many frozenset constants: their fix-up allocates a frozenset each.
SETS = "".join(f"def f{i}(x):\n    return x in {{{i}, {i + 1}, 'k{i}'}}\n" for i in range(40))
MODULES = {
    "mod_a.py": SETS + "VALUE = sum(f(i) for i, f in enumerate([" + ", ".join(f"f{i}" for i in range(40)) + "]))\n",
    "mod_b.py": SETS + "VALUE = 'b' + str(f3(4))\n",
}

# Prelude: `inside_cds_find(depth)` says whether the frame `depth` levels up
# is `_cds_find_spec` (patched importlib) or `cds._archived_spec`
# (stock) calling `_cds.find`.
PRELUDE = r'''
import dis, gc, sys
_ext = sys.modules["_frozen_importlib_external"]
_target = getattr(_ext, "_cds_find_spec", None) or getattr(sys.modules.get("cds"), "_archived_spec", None)
_offsets = set()
if _target is not None:
    _last = None
    for _ins in dis.get_instructions(_target.__code__):
        if _ins.opname in ("LOAD_METHOD", "LOAD_ATTR"):
            _last = _ins.argval
        elif _ins.opname in ("PRECALL", "CALL") and _last == "find":
            _offsets.add(_ins.offset)
hits = []

def inside_cds_find(depth):
    try:
        f = sys._getframe(depth + 1)
    except ValueError:  # a collection at exit, with no frame left
        return False
    return _target is not None and f.f_code is _target.__code__ and f.f_lasti in _offsets

def report():
    import mod_a, mod_b
    print(mod_a.VALUE, mod_b.VALUE)
    print("HITS", len(hits), file=sys.stderr)
'''

GC_CALLBACK = PRELUDE + r'''
def callback(phase, info):
    if phase == "start" and inside_cds_find(1):
        hits.append(1)
        import {nested}
gc.callbacks.append(callback)
gc.set_threshold(1)
import mod_a
gc.set_threshold(700)
report()
'''

FINALIZER = PRELUDE + r'''
import weakref

class Imports:
    def __del__(self):
        import {nested}

refs = []
def on_collected(ref):
    import {nested}

def callback(phase, info):
    # Garbage made now is collected by this very collection, inside _cds.find.
    if phase == "start" and inside_cds_find(1):
        hits.append(1)
        a, b = Imports(), Imports()
        a.other, b.other = b, a
        c = Imports()
        c.me = c
        refs.append(weakref.ref(c, on_collected))
gc.callbacks.append(callback)
gc.set_threshold(1)
import mod_a
gc.set_threshold(700)
report()
'''

AUDIT_HOOK = PRELUDE + r'''
def hook(event, args):
    if event == "import" and args[0] == "mod_a" and "mod_b" not in sys.modules:
        hits.append(1)
        import mod_b
sys.addaudithook(hook)
import mod_a
report()
'''


def hits_of(proc):
    return int(next(l for l in proc.stderr.splitlines() if l.startswith("HITS ")).split()[1])


def same_as_without_cds(ws, program, must_hit):
    for name, text in MODULES.items():
        ws.write(name, text)
    ws.archive("-c", "import mod_a, mod_b")
    assert {"mod_a", "mod_b"} <= set(ws.traced_names())
    plain = ws.plain("-c", program, timeout=30)
    if STOCK:
        cds = ws.plain("-c", f"import cds; cds.share({str(ws.img)!r})\n" + program + "\n" + STATS, timeout=30)
    else:
        cds = ws.replay("-c", program + "\n" + STATS, timeout=30)
    assert without_stats(cds.stdout) == plain.stdout.rstrip("\n")
    assert [l for l in cds.stderr.splitlines() if not l.startswith("HITS ")] == []
    if must_hit:
        assert hits_of(cds) > 0, "the hook never ran inside _cds.find: the test exercised nothing"
    return stats_of(cds)


# A collection runs inside an allocation on 3.11 only (see the module doc).
HITS_INSIDE_ALLOCATION = VERSION < (3, 12)


@pytest.mark.parametrize("nested", ["mod_b", "mod_a"])
def test_gc_callback_importing_during_first_import(ws, nested):
    stats = same_as_without_cds(ws, GC_CALLBACK.replace("{nested}", nested), HITS_INSIDE_ALLOCATION)
    # mod_a is served by the outer import; a nested import of mod_a (being
    # prepared) imported normally, one of mod_b was served.
    assert "mod_a" in stats["served"] and "mod_b" in stats["served"]
    assert stats["rejected"] == {}


@pytest.mark.parametrize("nested", ["mod_b", "mod_a"])
def test_finalizer_and_weakref_callback_importing(ws, nested):
    stats = same_as_without_cds(ws, FINALIZER.replace("{nested}", nested), HITS_INSIDE_ALLOCATION)
    assert "mod_a" in stats["served"] and "mod_b" in stats["served"]


def test_audit_hook_importing(ws):
    stats = same_as_without_cds(ws, AUDIT_HOOK, True)
    assert stats["served"][-2:] == ["mod_b", "mod_a"] or {"mod_a", "mod_b"} <= set(stats["served"])


def test_stats_while_collecting(ws):
    """cds.stats() allocates its result: a collection it triggers may import."""
    program = PRELUDE + r'''
import cds
def callback(phase, info):
    if phase == "start" and "mod_b" not in sys.modules:
        import mod_b
gc.callbacks.append(callback)
gc.set_threshold(1)
for _ in range(3):
    cds.stats()
gc.set_threshold(700)
report()
'''
    stats = same_as_without_cds(ws, program, False)
    assert "mod_b" in stats["served"]


# Run by a .pth that site processes before cds-hook.pth: a collection while
# `cds._start` fixes the archive's modules up imports one of them.
EARLY = r'''
import builtins, gc, sys
def callback(phase, info):
    try:
        caller = sys._getframe(1).f_code
    except ValueError:  # no Python frame: a collection at exit
        return
    if phase == "start" and caller.co_name == "_start" and caller.co_filename.endswith("__init__.py") \
            and "{nested}" not in sys.modules:
        builtins.early_hits.append(1)
        import {nested}
if not hasattr(builtins, "early_hits"):  # site may reach one directory by two paths
    builtins.early_hits = []
    gc.callbacks.append(callback)
    gc.set_threshold(1)
'''

AFTER_EARLY = r'''
import builtins, gc, sys
gc.callbacks.clear()
gc.set_threshold(700)
import mod_a, mod_b
print(mod_a.VALUE, mod_b.VALUE)
print("HITS", len(getattr(builtins, "early_hits", [])), file=sys.stderr)
'''


@pytest.fixture
def early_pth():
    """A .pth in the interpreter's site-packages, sorted before cds-hook.pth,
    running the file CDS_TEST_EARLY names when that is set."""
    site_packages = Path(run("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    pth = site_packages / "a-cds-test-early.pth"
    pth.write_text("import os; exec(open(os.environ['CDS_TEST_EARLY']).read()) if 'CDS_TEST_EARLY' in os.environ else None\n")
    yield
    pth.unlink()


@pytest.mark.skipif(not STOCK, reason="the stock hook fixes an archive named at start-up up as it starts")
@pytest.mark.parametrize("nested", ["mod_b", "mod_a"])
def test_gc_callback_importing_while_the_hook_fixes_up_at_start(ws, early_pth, nested):
    for name, text in MODULES.items():
        ws.write(name, text)
    early = ws.write("early.py", EARLY.replace("{nested}", nested))
    ws.archive("-c", "import mod_a, mod_b")
    # PYTHONPATH: the nested import runs before the program's directory is on sys.path.
    env = clean_env(PYTHONPATH=ws.path, CDS_TEST_EARLY=early)
    plain = ws.plain("-c", AFTER_EARLY, env=env, timeout=30)
    cds = ws.replay("-c", AFTER_EARLY + STATS, env=env, timeout=30)
    assert without_stats(cds.stdout) == plain.stdout.rstrip("\n")
    assert [l for l in cds.stderr.splitlines() if not l.startswith("HITS ")] == []
    if HITS_INSIDE_ALLOCATION:
        assert hits_of(cds) > 0, "no collection ran inside the start-up fix-up: the test exercised nothing"
    stats = stats_of(cds)
    # The nested import found its module claimed (imported normally); the other was fixed up and served.
    other = "mod_a" if nested == "mod_b" else "mod_b"
    assert other in stats["served"] and stats["rejected"] == {}
