"""`python -m cds info` and `python -m cds verify`, in text and JSON: what
they say about an archive and each of its modules, and their exit status."""

import json
import os
import subprocess

from conftest import PYTHON, VERSION, clean_env, run


def archive_of(ws):
    ws.write("alpha.py", "A = 1\n")
    ws.write("beta.py", "B = 2\n")
    return ws.archive("-c", "import alpha, beta")


def test_info_describes_the_archive(ws):
    img = archive_of(ws)
    info = json.loads(run("-m", "cds", "info", "--json", img).stdout)
    assert info["path"] == str(img) and info["size"] == img.stat().st_size
    assert info["python"].startswith(f"{VERSION[0]}.{VERSION[1]}.") and len(info["build_id"]) == 32
    assert info["usable_here"] is True and info["format_version"] >= 4
    assert set(info["regions"]) == {"table", "names_index", "names", "hot", "cold", "relocations"}
    alpha = next(m for m in info["modules"] if m["name"] == "alpha")
    assert alpha["origin"] == str(ws.path / "alpha.py") and alpha["package"] is False
    assert alpha["hot"] > 0 and alpha["relocations"] > 0 and alpha["source_size"] == 6
    text = run("-m", "cds", "info", img).stdout
    assert "usable here:  yes" in text and "modules:" in text and str(ws.path / "beta.py") in text


def test_info_piped_into_a_reader_that_stops_early_says_nothing(ws):
    # `python -m cds info IMG | head -1`: the closed pipe is no error to
    # report. A table longer than the pipe's buffer (64 KiB), so that the
    # writer does meet the closed pipe.
    names = [f"module_with_a_rather_long_name_{i:04}" for i in range(600)]
    for name in names:
        ws.write(f"{name}.py", "")
    img = ws.archive("-c", f"import {', '.join(names)}")
    proc = subprocess.Popen([PYTHON, "-m", "cds", "info", str(img)], env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.stderr.read() == b"" and proc.wait() == 1


def test_info_of_another_optimisation_level_says_why_not_usable(ws):
    img = archive_of(ws)
    info = json.loads(run("-O", "-m", "cds", "info", "--json", img).stdout)
    assert info["usable_here"] is False and "-O" in info["not_usable_because"]


def test_verify_tells_fresh_stale_and_missing(ws):
    img = archive_of(ws)
    proc = run("-m", "cds", "verify", img)
    # The trace also lists start-up modules (3.13: frozen ones).
    assert "every module passes its checks; stamped" in proc.stdout
    counts = proc.stdout.split(" modules (")[1].split(")")[0]
    assert "fresh" in counts and "stale" not in counts and "missing" not in counts, counts
    ws.write("alpha.py", "A = 10\n")
    os.unlink(ws.path / "beta.py")
    proc = run("-m", "cds", "verify", img, check=False)
    assert proc.returncode == 1
    assert "stale    alpha: source file changed since the dump (size)" in proc.stdout, proc.stdout
    assert "missing  beta:" in proc.stdout
    report = json.loads(run("-m", "cds", "verify", "--json", img, check=False).stdout)
    by_name = {m["name"]: m for m in report["modules"]}
    assert by_name["alpha"]["source"] == "stale" and by_name["beta"]["source"] == "missing"
    assert report["sources"]["stale"] == 1 and report["sources"]["missing"] == 1 and report["errors"] == []


def test_verify_by_hash_sees_content(ws):
    img = archive_of(ws)
    st = os.stat(ws.path / "alpha.py")
    ws.write("alpha.py", "A = 3\n")  # same size
    os.utime(ws.path / "alpha.py", ns=(st.st_atime_ns, st.st_mtime_ns))
    report = json.loads(run("-m", "cds", "verify", "--json", "--check", "hash", img, check=False).stdout)
    alpha = next(m for m in report["modules"] if m["name"] == "alpha")
    assert alpha["source"] == "stale" and "content" in alpha["why"]


def test_info_of_something_else_is_one_line(ws):
    bad = ws.write("not.img", "hello")
    proc = run("-m", "cds", "info", bad, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("cds: ") and proc.stderr.count("\n") == 1, proc.stderr
