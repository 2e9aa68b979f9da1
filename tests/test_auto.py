"""`-X cds_auto` (`PYTHONCDSAUTO=1`): with `-X cds=app.img`, a run whose
archive is missing, unusable or had a module rejected traces itself and
rewrites the archive atomically at exit; the next run serves from it. A run
whose archive served as it should writes nothing. Concurrent runs never
leave a broken file; an unwritable location costs one warning line."""

import os
import subprocess

import pytest

from conftest import PYTHON, STATS, VERSION, clean_env, other_interpreters, run, stats_of, without_stats

APP = "import helper, json\nprint(helper.greet(json.dumps([1, 2])))\n"
HELPER_V1 = "def greet(x):\n    return 'hello ' + x\n"
HELPER_V2 = "def greet(x):\n    return 'HELLO, world: ' + x\n"


def auto(ws, *args, img="app.img", check=True, env=None, **kw):
    """Runs app.py (or `args`) under -X cds=IMG -X cds_auto, printing cds.stats()."""
    args = args or ("-c", APP + STATS)
    return run(f"-Xcds={img}", "-Xcds_auto", *args, cwd=ws.path, check=check, env=env, **kw)


def identity(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_size


def test_first_run_writes_the_archive_and_the_next_serves_from_it(ws):
    ws.write("helper.py", HELPER_V1)
    plain = ws.plain("-c", APP)
    first = auto(ws)
    assert without_stats(first.stdout) == plain.stdout.rstrip("\n")
    assert first.stderr == ""  # a missing archive is the expected first run: silent
    assert stats_of(first)["archive"] is None
    img = ws.path / "app.img"
    written = identity(img)
    second = auto(ws)
    assert without_stats(second.stdout) == plain.stdout.rstrip("\n")
    stats = stats_of(second)
    assert {"helper", "json", "json.decoder"} <= set(stats["served"])
    assert stats["rejected"] == {}
    assert second.stderr == ""
    # It served as it should: nothing rewritten.
    assert identity(img) == written
    assert not [p for p in os.listdir(ws.path) if p.endswith(".tmp")]


def test_a_stale_module_is_imported_normally_then_archived_anew(ws):
    ws.write("helper.py", HELPER_V1)
    auto(ws)
    helper = ws.write("helper.py", HELPER_V2)
    os.utime(helper, ns=(os.stat(helper).st_atime_ns, os.stat(helper).st_mtime_ns + 10**9))
    stale = auto(ws, "-Xcds_verbose", "-c", APP + STATS)
    assert without_stats(stale.stdout) == "HELLO, world: [1, 2]"
    assert "helper" in stats_of(stale)["rejected"]
    assert "-X cds_auto" in stale.stderr and "module helper rejected" in stale.stderr
    fresh = auto(ws)
    assert without_stats(fresh.stdout) == "HELLO, world: [1, 2]"
    assert "helper" in stats_of(fresh)["served"]
    assert stats_of(fresh)["rejected"] == {}


def test_an_unusable_archive_is_replaced(ws):
    ws.write("helper.py", HELPER_V1)
    (ws.path / "app.img").write_bytes(b"not an archive at all" * 100)
    broken = auto(ws)
    assert without_stats(broken.stdout) == "hello [1, 2]"
    assert stats_of(broken)["archive"] is None
    assert broken.stderr == ""
    assert "helper" in stats_of(auto(ws))["served"]


def test_an_archive_of_another_build_is_replaced(ws):
    others = other_interpreters()
    if not others:
        pytest.skip("needs the other CPython version built in this checkout (make builds both)")
    ws.write("helper.py", HELPER_V1)
    # A real archive, written the same way by the other version.
    subprocess.run([others[0], "-Xcds=app.img", "-Xcds_auto", "-c", APP], cwd=ws.path, env=clean_env(),
                   check=True, capture_output=True)
    before = identity(ws.path / "app.img")
    foreign = auto(ws, "-Xcds_verbose=1", "-c", APP + STATS)
    assert without_stats(foreign.stdout) == "hello [1, 2]"
    assert "rewriting it at exit (-X cds_auto)" in foreign.stderr
    assert identity(ws.path / "app.img") != before
    assert "helper" in stats_of(auto(ws))["served"]


def test_concurrent_runs_leave_one_whole_archive(ws):
    ws.write("helper.py", HELPER_V1)
    procs = [subprocess.Popen([PYTHON, "-Xcds=app.img", "-Xcds_auto", "-c", APP], cwd=ws.path, env=clean_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert (p.returncode, out, err) == (0, "hello [1, 2]\n", "")
    assert not [p for p in os.listdir(ws.path) if p.endswith(".tmp")]
    after = auto(ws)
    assert "helper" in stats_of(after)["served"] and stats_of(after)["rejected"] == {}
    assert after.stderr == ""


def test_an_unwritable_location_costs_one_warning(ws):
    ws.write("helper.py", HELPER_V1)
    if os.geteuid() == 0:
        img = ws.write("not-a-dir", "") / "app.img"  # root writes anywhere else: a path nobody can create
    else:
        locked = ws.path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        img = locked / "app.img"
    proc = auto(ws, "-c", APP, img=img)
    assert proc.returncode == 0
    assert proc.stdout == "hello [1, 2]\n"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cds: warning: cannot rewrite archive {img} (-X cds_auto): ")


def test_the_exit_status_is_the_programs(ws):
    ws.write("helper.py", HELPER_V1)
    proc = auto(ws, "-c", APP + "raise SystemExit(3)", check=False)
    assert (proc.returncode, proc.stdout) == (3, "hello [1, 2]\n")
    assert (ws.path / "app.img").exists()


def test_the_environment_variable_and_version_substitution(ws):
    ws.write("helper.py", HELPER_V1)
    tag = f"cpython-{VERSION[0]}{VERSION[1]}"
    env = clean_env(PYTHONCDS="app.%v.img", PYTHONCDSAUTO="1")
    run("-c", APP, cwd=ws.path, env=env)
    assert (ws.path / f"app.{tag}.img").exists()
    served = run("-c", APP + STATS, cwd=ws.path, env=env)
    assert "helper" in stats_of(served)["served"]
    bad = run("-c", "pass", cwd=ws.path, env=clean_env(PYTHONCDS="x.img", PYTHONCDSAUTO="yes"), check=False)
    assert (bad.returncode, bad.stderr) == (1, "cds: invalid PYTHONCDSAUTO value 'yes': expected 1 or 0\n")


def test_nothing_to_keep_up_to_date(ws):
    ws.write("helper.py", HELPER_V1)
    alone = run("-Xcds_auto", "-c", APP, cwd=ws.path)
    assert alone.stdout == "hello [1, 2]\n"
    assert alone.stderr == "cds: warning: -X cds_auto needs -X cds=PATH, the archive to keep up to date; ignored\n"
    off = auto(ws, "-Xcds_mode=off", "-c", APP)
    assert (off.stdout, off.stderr) == ("hello [1, 2]\n", "")
    assert not (ws.path / "app.img").exists()
