"""Per-version behaviour: immortality, runtime state of archived code
(specialisation, tracing, monitoring), archives from other builds."""

import subprocess

import pytest

from conftest import PYTHON, STATS, VERSION, clean_env, needs_patch, other_interpreters, run, stats_of, without_stats

MODULE = '''
CONST = ("a tuple", 12345678901234567890, 2.5)

def work(n):
    total = 0
    for i in range(n):
        if i % 3:
            total += i
        else:
            total -= 1
    return total

class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y
    def norm(self):
        return self.x * self.x + self.y * self.y
'''


def test_archived_constants_are_never_freed(ws):
    ws.write("m.py", MODULE)
    ws.archive("-c", "import m")
    proc = ws.replay("-c", "import m, sys; print(sys.getrefcount(m.CONST) > 2**31, sys.getrefcount(m.work.__code__) > 2**31)\n" + STATS)
    assert without_stats(proc.stdout) == "True True"
    assert "m" in stats_of(proc)["served"]


def test_settrace_sees_the_same_lines(ws):
    ws.write("m.py", MODULE)
    ws.archive("-c", "import m")
    prog = (
        "import sys, m\n"
        "events = []\n"
        "def tracer(frame, event, arg):\n"
        "    if frame.f_code.co_filename == m.__file__:\n"
        "        events.append((event, frame.f_code.co_name, frame.f_lineno))\n"
        "    return tracer\n"
        "sys.settrace(tracer); m.work(5); m.Point(3, 4).norm(); sys.settrace(None)\n"
        "print(events)\n"
    )
    plain = ws.plain("-c", prog)
    cds = ws.replay("-c", prog + STATS)
    assert without_stats(cds.stdout) == without_stats(plain.stdout)
    assert "('line', 'work'," in plain.stdout


@pytest.mark.skipif(VERSION < (3, 12), reason="sys.monitoring is 3.12+")
def test_sys_monitoring_sees_the_same_events(ws):
    ws.write("m.py", MODULE)
    ws.archive("-c", "import m")
    prog = (
        "import sys, m\n"
        "mon = sys.monitoring; TOOL = 3; seen = []\n"
        "mon.use_tool_id(TOOL, 'test')\n"
        "mon.register_callback(TOOL, mon.events.LINE, lambda code, line: seen.append((code.co_name, line)))\n"
        "mon.register_callback(TOOL, mon.events.PY_START, lambda code, off: seen.append(('start', code.co_name)))\n"
        "mon.set_events(TOOL, mon.events.LINE | mon.events.PY_START)\n"
        "m.work(4); m.Point(1, 2).norm()\n"
        "mon.set_events(TOOL, 0)\n"
        "for _ in range(100): m.work(10)\n"  # runs again un-instrumented
        "print([s for s in seen if s[0] in ('work', 'norm', '__init__', 'start')])\n"
    )
    plain = ws.plain("-c", prog)
    cds = ws.replay("-c", prog + STATS)
    assert without_stats(cds.stdout) == without_stats(plain.stdout)
    assert "('start', 'work')" in plain.stdout
    assert "m" in stats_of(cds)["served"]


def test_specialised_bytecode_is_the_same(ws):
    ws.write("m.py", MODULE)
    ws.archive("-c", "import m")
    prog = (
        "import dis, io, re, m\n"
        "for _ in range(2000): m.work(20); m.Point(1, 2).norm()\n"
        "out = io.StringIO()\n"
        "dis.dis(m.work, file=out, adaptive=True); dis.dis(m.Point.norm, file=out, adaptive=True)\n"
        "print(re.sub(r'0x[0-9a-f]+', '0x?', out.getvalue()))\n"
        "print(m.work(100), m.Point(3, 4).norm())\n"
    )
    plain = ws.plain("-c", prog)
    cds = ws.replay("-c", prog + STATS)
    assert without_stats(cds.stdout) == without_stats(plain.stdout)
    # The archived code really was specialised, as the heap one is.
    assert "BINARY_OP_ADD_INT" in cds.stdout


@pytest.mark.skipif(not other_interpreters(), reason="only one cds interpreter is built")
def test_archive_from_another_version_is_refused(ws):
    for other in other_interpreters():
        lst, img = ws.path / "other.lst", ws.path / "other.img"
        subprocess.run([other, f"-Xcds_trace={lst}", "-c", "import json"], env=clean_env(), check=True, cwd=ws.path)
        subprocess.run([other, "-m", "cds", "dump", str(lst), str(img)], env=clean_env(), check=True, cwd=ws.path, capture_output=True)
        proc = ws.replay("-c", "import json; print(json.dumps([1]))\n" + STATS, img=img)
        assert without_stats(proc.stdout) == "[1]"
        assert stats_of(proc)["served"] == []
        line, = proc.stderr.splitlines()
        assert "cannot use archive" in line and ("made by Python" in line or "another build" in line), line


@pytest.mark.skipif(VERSION < (3, 13), reason="3.11 and 3.12 deep-freeze their start-up modules")
@needs_patch("FrozenImporter asking cds (patch 0005)")
def test_frozen_startup_modules_are_served(ws):
    opts = ["-X", "frozen_modules=on"]
    ws.trace(*opts, "-c", "pass")
    frozen = [l.split("\t")[0] for l in ws.lst.read_text().splitlines() if l.endswith("\t<frozen>")]
    assert {"os", "codecs", "io", "abc", "site"} <= set(frozen), frozen
    run(*opts, "-m", "cds", "dump", ws.lst, ws.img, cwd=ws.path)
    prog = "import os, sys; print(os.path.join('a', 'b'), os.__spec__.origin, os.__spec__.loader.__name__)\n" + STATS
    plain = ws.plain(*opts, "-c", prog)
    cds = ws.replay(*opts, "-c", prog)
    assert without_stats(cds.stdout) == without_stats(plain.stdout)
    assert {"os", "codecs", "io", "abc", "site"} <= set(stats_of(cds)["served"])
    assert cds.stderr == ""
