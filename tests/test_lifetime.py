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
        "import os, threading, importlib\n"
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
