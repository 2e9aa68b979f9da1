"""What the dump archives: code compiled from the source it records, never
code a normal import would not produce (pylib/cds/dump.py)."""

import os

from conftest import STATS, clean_env, run, stats_of, without_stats


def test_stale_pyc_with_the_sources_size_and_mtime_is_not_archived(ws):
    src = ws.write("mod.py", "V = 'v1'\n")
    ws.plain("-c", "import mod")  # writes __pycache__/mod.*.pyc for v1
    stamp = src.stat()
    src.write_text("V = 'v2'\n")  # same size
    os.utime(src, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same mtime: the .pyc looks fresh
    ws.lst.write_text(f"mod\t{src}\n")
    ws.dump()
    for check in ("stat", "hash"):
        proc = ws.replay(f"-Xcds_check={check}", "-c", "import mod; print(mod.V)\n" + STATS)
        assert without_stats(proc.stdout) == "v2", check
        assert "mod" in stats_of(proc)["served"]


def test_module_whose_compilation_warns_is_not_archived(ws):
    ws.write("esc.py", 'PATTERN = "\\d+"\n')
    ws.write("fine.py", "X = 1\n")
    ws.trace("-c", "import esc, fine")
    skipped = ws.dump().stderr
    assert "skipped esc" in skipped and "invalid escape sequence" in skipped
    env = clean_env(PYTHONDONTWRITEBYTECODE="1")
    for pyc in (ws.path / "__pycache__").glob("esc.*"):
        pyc.unlink()
    program = "import fine\ntry:\n    import esc\nexcept SyntaxError as e:\n    print('SyntaxError')\n"
    plain = run("-B", "-W", "error", "-c", program, env=env, cwd=ws.path)
    cds = run("-B", "-W", "error", f"-Xcds={ws.img}", "-c", program + STATS, env=env, cwd=ws.path)
    assert without_stats(plain.stdout) == without_stats(cds.stdout) == "SyntaxError"
    served = stats_of(cds)["served"]
    assert "fine" in served and "esc" not in served


def test_bare_names_archive_what_importing_them_loads(ws):
    ws.write("top.py", "import helper\n")
    ws.write("helper.py", "import json\n")
    ws.lst.write_text("top\n")
    env = clean_env(PYTHONPATH=ws.path)
    run("-m", "cds.dump", ws.lst, ws.img, env=env, cwd=ws.path)
    proc = run(f"-Xcds={ws.img}", "-c", "import top\n" + STATS, env=env, cwd=ws.path)
    served = set(stats_of(proc)["served"])
    assert {"top", "helper", "json", "json.decoder"} <= served


def test_bare_name_that_fails_to_import_is_reported(ws):
    ws.write("broken.py", "raise RuntimeError('no')\n")
    ws.write("good.py", "X = 1\n")
    ws.lst.write_text("broken\ngood\n")
    proc = run("-m", "cds", "dump", ws.lst, ws.img, env=clean_env(PYTHONPATH=ws.path), cwd=ws.path)
    assert "skipped broken: importing it failed: RuntimeError: no" in proc.stderr
    assert "good" in stats_of(run(f"-Xcds={ws.img}", "-c", "import good\n" + STATS,
                                  env=clean_env(PYTHONPATH=ws.path), cwd=ws.path))["served"]


def test_python_m_cds_dump_writes_the_archive(ws):
    ws.write("mod.py", "X = 1\n")
    ws.trace("-c", "import mod")
    proc = run("-m", "cds.dump", ws.lst, ws.img, cwd=ws.path)
    assert ws.img.is_file(), proc.stderr
    assert "mod" in stats_of(ws.replay("-c", "import mod\n" + STATS))["served"]
