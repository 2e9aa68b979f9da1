"""Archived objects survive what programs do to them."""

from conftest import STATS, stats_of, without_stats

MANY = "import json, argparse, email.message, http.client, asyncio, unittest, dataclasses, typing, logging, decimal"


def test_many_modules_gc_and_clean_exit(ws):
    ws.archive("-c", MANY)
    prog = MANY + (
        "\nimport gc, sys\n"
        "gc.set_debug(gc.DEBUG_UNCOLLECTABLE)\n"
        "for _ in range(3): gc.collect()\n"
        "print(len(gc.garbage))\n"
        "for name in list(sys.modules):\n"
        "    if name.startswith(('json', 'email', 'http', 'asyncio')):\n"
        "        del sys.modules[name]\n"
        "gc.collect()\n" + STATS
    )
    proc = ws.replay("-X", "dev", "-c", prog)
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert without_stats(proc.stdout) == "0"
    assert len(stats_of(proc)["served"]) > 100


def test_code_objects_behave_like_code_objects(ws):
    ws.write("m.py", "def f(a, b=1):\n    return a + b\nclass C:\n    def g(self):\n        return 'g'\n")
    ws.archive("-c", "import m")
    prog = (
        "import m, copy, pickle, weakref, sys, gc\n"
        "c = m.f.__code__\n"
        "assert copy.deepcopy(c) is c\n"
        "r = c.replace(co_name='h')\n"
        "assert r.co_name == 'h' and c.co_name == 'f'\n"
        "w = weakref.ref(m.f)\n"
        "assert pickle.loads(pickle.dumps(m.C)) is m.C\n"
        "assert sys.getrefcount(c) > 1\n"
        "for _ in range(1000): m.f(1)\n"  # warm up and quicken the archived bytecode
        "assert m.f(2, 3) == 5 and m.C().g() == 'g'\n"
        "del m.f; gc.collect()\n"
        "print('ok', w() is None)\n" + STATS
    )
    proc = ws.replay("-c", prog)
    assert without_stats(proc.stdout) == "ok True"
    assert "m" in stats_of(proc)["served"]


def test_threads_and_fork_import_archived_modules(ws):
    ws.archive("-c", MANY)
    prog = (
        "import os, threading, importlib, warnings\n"
        # 3.12+ warns about forking a multi-threaded process when a joined
        # thread has not quite exited yet (/proc/self/stat), cds or not.
        "warnings.filterwarnings('ignore', 'This process .* is multi-threaded', DeprecationWarning)\n"
        "names = " + repr(MANY.replace("import ", "").split(", ")) + "\n"
        "ts = [threading.Thread(target=importlib.import_module, args=(n,)) for n in names]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    import json.tool, email.mime.text\n"
        "    os._exit(0)\n"
        "print(os.waitpid(pid, 0)[1])\n" + STATS
    )
    proc = ws.replay("-c", prog)
    assert without_stats(proc.stdout) == "0"
    assert proc.stderr == ""
    assert set(MANY.replace("import ", "").split(", ")) <= set(stats_of(proc)["served"])


def test_custom_path_hooks_are_honoured(ws):
    """The archive stands in for FileFinder; a program's own path hooks win."""
    ws.write("mymod.py", "VALUE = 1\n")
    ws.write("alt/mymod.py", "VALUE = 2\n")
    ws.archive("-c", "import mymod, json")
    prog = (
        "import sys, os, importlib.machinery as m\n"
        "details = (m.SourceFileLoader, m.SOURCE_SUFFIXES)\n"
        "def hook(path):\n"  # the current directory is searched in ./alt instead
        "    if path not in ('', os.getcwd()): raise ImportError\n"
        "    return m.FileFinder(os.path.abspath('alt'), details)\n"
        "sys.path_hooks.insert(0, hook); sys.path_importer_cache.clear()\n"
        "import mymod\n"
        "print(mymod.VALUE)\n" + STATS
    )
    proc = ws.replay("-c", prog)
    assert without_stats(proc.stdout) == "2"
    stats = stats_of(proc)
    assert "json" in stats["served"] and "mymod" not in stats["served"]


def test_embedder_reinitialising_the_runtime(ws):
    """Py_Finalize then Py_Initialize in one process (CPython's _testembed)."""
    import os
    import subprocess

    from conftest import PYTHON, clean_env

    testembed = os.path.join(os.path.dirname(os.path.realpath(PYTHON)), "Programs", "_testembed")
    if not os.path.exists(testembed):
        import pytest

        pytest.skip("no Programs/_testembed in this build")
    ws.archive("-c", "import json")
    proc = subprocess.run([testembed, "test_repeated_simple_init"], env=clean_env(PYTHONCDS=ws.img),
                          cwd=os.path.dirname(os.path.dirname(testembed)), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("Finalized") >= 3
