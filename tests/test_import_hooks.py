"""Import hooks always win: cds serves only where a plain import would use
the plain SourceFileLoader that the default FileFinder, reached through
PathFinder, makes for the archived file (patch 0003)."""

from conftest import STATS, clean_env, run, stats_of, without_stats

# The module every test archives and then imports under a hook.
MOD = "ORIGINAL = 'original'\n"


def archived(ws):
    ws.write("lib/hooked.py", MOD)
    env = clean_env(PYTHONPATH=ws.path / "lib")
    run(f"-Xcds_trace={ws.lst}", "-c", "import hooked", env=env, cwd=ws.path)
    ws.dump()
    proc = run(f"-Xcds={ws.img}", "-c", "import hooked\n" + STATS, env=env, cwd=ws.path)
    assert "hooked" in stats_of(proc)["served"], "precondition: served without a hook"
    return env


def replay(ws, env, program):
    """Runs program without and with cds; both outputs, STATS line removed."""
    plain = run("-c", program, env=env, cwd=ws.path)
    cds = run(f"-Xcds={ws.img}", "-c", program + "\n" + STATS, env=env, cwd=ws.path)
    return without_stats(plain.stdout), without_stats(cds.stdout), stats_of(cds)


def assert_hook_wins(ws, env, program, expected):
    """program prints `expected` without and with cds, and cds served nothing of it."""
    plain, cds, stats = replay(ws, env, program)
    assert plain == cds == expected
    assert "hooked" not in stats["served"]


LOADER_SUBCLASS = """
import sys
from importlib.machinery import SourceFileLoader, PathFinder

class Transforming(SourceFileLoader):
    def source_to_code(self, data, path, *, _optimize=-1):
        return compile(data.replace(b"'original'", b"'TRANSFORMED'"), path, "exec")

class Finder:
    # the typeguard/beartype pattern: PathFinder's spec, another loader
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        spec = PathFinder.find_spec(name, path, target)
        if spec is not None and name == "hooked":
            spec.loader = Transforming(name, spec.origin)
        return spec

sys.meta_path.insert(0, Finder)
import hooked
print(hooked.ORIGINAL)
"""


def test_loader_subclass_compiles_its_own_code(ws):
    env = archived(ws)
    # source_to_code runs only when no .pyc is there (as for typeguard,
    # which keeps its own cache tag).
    import shutil
    shutil.rmtree(ws.path / "lib" / "__pycache__")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    assert_hook_wins(ws, env, LOADER_SUBCLASS, "TRANSFORMED")


# A loader that sets ORIGINAL to the name of the hook that made it.
HOOK_LOADER = """
import sys, importlib.util

class Loader:
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        module.ORIGINAL = %r
"""

PATH_IMPORTER_CACHE = HOOK_LOADER % "custom finder" + """
class Finder:
    def find_spec(self, name, target=None):
        if name != "hooked":
            return None
        return importlib.util.spec_from_loader(name, Loader())

lib = [p for p in sys.path if p.endswith("/lib")][0]
sys.path_importer_cache[lib] = Finder()
import hooked
print(hooked.ORIGINAL)
"""


def test_finder_in_path_importer_cache_wins(ws):
    env = archived(ws)
    assert_hook_wins(ws, env, PATH_IMPORTER_CACHE, "custom finder")


def test_finder_in_path_importer_cache_of_an_earlier_entry_wins(ws):
    env = archived(ws)
    program = PATH_IMPORTER_CACHE.replace(
        'lib = [p for p in sys.path if p.endswith("/lib")][0]',
        "import os; lib = os.getcwd(); sys.path.insert(0, lib)")
    assert_hook_wins(ws, env, program, "custom finder")


META_PATH_BEFORE_PATHFINDER = HOOK_LOADER % "meta path finder" + """
from importlib.machinery import PathFinder

class Finder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "hooked":
            return importlib.util.spec_from_loader(name, Loader())
        return None

sys.meta_path.insert(sys.meta_path.index(PathFinder), Finder)
import hooked
print(hooked.ORIGINAL)
"""


def test_meta_path_finder_before_pathfinder_wins(ws):
    env = archived(ws)
    assert_hook_wins(ws, env, META_PATH_BEFORE_PATHFINDER, "meta path finder")


NO_PATHFINDER = """
import sys
from importlib.machinery import PathFinder
sys.meta_path.remove(PathFinder)
try:
    import hooked
except ImportError:
    print("ImportError")
else:
    print("imported", hooked.ORIGINAL)
sys.meta_path.append(PathFinder)  # for the STATS line
"""


def test_no_pathfinder_no_import(ws):
    env = archived(ws)
    assert_hook_wins(ws, env, NO_PATHFINDER, "ImportError")


def test_nonexistent_entries_before_the_archived_one_do_not_stop_serving(ws):
    env = archived(ws)
    program = "import sys; sys.path.insert(0, '/nonexistent/dir'); import hooked; print(hooked.ORIGINAL)"
    plain, cds, stats = replay(ws, env, program)
    assert plain == cds == "original"
    assert "hooked" in stats["served"]


def test_a_loader_asked_for_its_code_by_no_name_gets_it(ws):
    # importlib's loaders take None for "the module I load"
    # (`_check_name`): the code comes back, with or without cds (the stock
    # hook raised TypeError, passing None on to `_cds.get_code`). It is
    # served from the archive either way, and a name that is not the
    # loader's still raises ImportError, as without cds.
    env = archived(ws)
    program = (
        "import importlib.util\n"
        "spec = importlib.util.find_spec('hooked')\n"
        "code = spec.loader.get_code(None)\n"
        "namespace = {}\n"
        "exec(code, namespace)\n"
        "try:\n"
        "    spec.loader.get_code('other')\n"
        "except ImportError as e:\n"
        "    print(namespace['ORIGINAL'], type(e).__name__)\n"
    )
    plain, cds, stats = replay(ws, env, program)
    assert plain == cds == "original ImportError"
    assert "hooked" in stats["served"]
