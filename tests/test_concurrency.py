"""Many processes tracing, dumping and mapping the same files at once."""

import os
import subprocess

from conftest import PYTHON, STATS, clean_env, run, stats_of, without_stats

WORKLOADS = ["json", "argparse", "email.message", "http.client", "asyncio", "unittest", "decimal", "logging"]


def spawn(args, cwd, env=None):
    return subprocess.Popen([PYTHON, *map(str, args)], cwd=cwd, env=env or clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs):
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append((out, err))
    return outs


def test_concurrent_tracers_write_whole_lines(ws):
    finish([spawn([f"-Xcds_trace={ws.lst}", "-c", f"import {w}"], ws.path) for w in WORKLOADS])
    lines = ws.lst.read_text().splitlines()
    for line in lines:
        name, path = line.split("\t")  # no torn or interleaved line
        assert path.endswith(".py") or path == "<frozen>", line
    names = {l.split("\t")[0] for l in lines}
    assert {"json", "argparse", "email.message", "http.client", "asyncio", "unittest", "decimal", "logging"} <= names


def test_concurrent_dumps_to_one_path_leave_a_whole_archive(ws):
    ws.trace("-c", "import " + ", ".join(WORKLOADS))
    finish([spawn(["-m", "cds", "dump", ws.lst, ws.img], ws.path) for _ in range(6)])
    assert not [p for p in os.listdir(ws.path) if ".tmp." in p]  # temporaries renamed or removed
    proc = ws.replay("-c", "import " + ", ".join(WORKLOADS) + "\n" + STATS)
    assert proc.stderr == ""
    assert set(WORKLOADS) <= set(stats_of(proc)["served"])


def test_many_processes_map_one_archive(ws):
    ws.archive("-c", "import " + ", ".join(WORKLOADS))
    prog = "import " + ", ".join(WORKLOADS) + "; import json; print(json.dumps(sorted([3, 1, 2])))\n" + STATS
    outs = finish([spawn([f"-Xcds={ws.img}", "-c", prog], ws.path) for _ in range(12)])
    for out, err in outs:
        assert err == ""
        assert out.splitlines()[0] == "[1, 2, 3]"
        assert set(WORKLOADS) <= set(stats_of(subprocess.CompletedProcess([], 0, out, err))["served"])


def test_corrupt_archive_leaks_no_descriptor_or_mapping(ws):
    img = ws.archive("-c", "import json")
    data = bytearray(img.read_bytes())
    data[30] ^= 1  # build id: refused after mapping
    bad = ws.path / "bad.img"
    bad.write_bytes(bytes(data))
    prog = (
        "import os\n"
        "fds = len(os.listdir('/proc/self/fd'))\n"
        "maps = [l for l in open('/proc/self/maps') if l.rstrip().endswith(('.img'))]\n"
        "print(fds, maps)\n"
    )
    plain = ws.plain("-c", prog)
    for archive in (bad, ws.path / "missing.img", ws.path):
        proc = ws.replay("-c", prog, img=archive)
        assert without_stats(proc.stdout) == without_stats(plain.stdout)
    # A good archive stays mapped, but its descriptor is closed.
    good = ws.replay("-c", prog)
    fds, maps = good.stdout.split(" ", 1)
    assert fds == plain.stdout.split(" ", 1)[0] and "mod.img" in maps


def test_subinterpreters_import_normally(ws):
    ws.archive("-c", "import json")
    prog = (
        "import json\n"
        "try:\n"
        "    import _xxsubinterpreters as interpreters\n"
        "except ImportError:\n"
        "    import _interpreters as interpreters\n"
        "i = interpreters.create()\n"
        # In the subinterpreter, get_code unmarshals a new object each call: not served.
        "interpreters.run_string(i, 'import json; g = json.__spec__.loader.get_code; assert json.loads(\"[1]\") == [1]; assert g(\"json\") is not g(\"json\")')\n"
        "interpreters.destroy(i)\n"
        "print('ok')\n" + STATS
    )
    proc = ws.replay("-c", prog)
    assert without_stats(proc.stdout) == "ok"
    assert "json" in stats_of(proc)["served"]
