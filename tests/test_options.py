"""cds's options follow CPython's rules for its PYTHON* variables: empty
counts as unset, -E/-I ignore every cds variable (PYTHONCDS* and the
original's PYCDS*), and a bad value stops start-up with status 1 and one
line naming the option, the value and the accepted values."""

import pytest

from conftest import STATS, clean_env, needs_patch, run, stats_of

BAD = [
    (["-Xcds_check=bogus"], {}, "invalid -X cds_check value 'bogus': expected stat, hash or none"),
    (["-Xcds_mode=bogus"], {}, "invalid -X cds_mode value 'bogus': expected auto, on or off"),
    (["-Xcds_mode"], {}, "invalid -X cds_mode value '': expected auto, on or off"),
    (["-Xcds_verbose=3"], {}, "invalid -X cds_verbose value '3': expected 0, 1 or 2"),
    ([], {"PYTHONCDSCHECK": "bogus"}, "invalid PYTHONCDSCHECK value 'bogus': expected stat, hash or none"),
    ([], {"PYTHONCDSMODE": "bogus"}, "invalid PYTHONCDSMODE value 'bogus': expected auto, on or off"),
    ([], {"PYTHONCDSVERBOSE": "yes"}, "invalid PYTHONCDSVERBOSE value 'yes': expected 0, 1 or 2"),
    ([], {"PYTHONCDSAUTO": "yes"}, "invalid PYTHONCDSAUTO value 'yes': expected 1 or 0"),
    (["-Xcds_auto=2"], {}, "invalid -X cds_auto value '2': expected 1 or 0"),
    ([], {"PYCDSVERBOSE": "9"}, "invalid PYCDSVERBOSE value '9': expected 0, 1 or 2"),
    ([], {"PYCDSMODE": "bogus"}, "invalid PYCDSMODE value 'bogus': expected TRACE, SHARE or MANUALLY"),
    # Upper-case only, as the original documents its values.
    ([], {"PYCDSMODE": "trace"}, "invalid PYCDSMODE value 'trace': expected TRACE, SHARE or MANUALLY"),
]


@pytest.mark.parametrize("args,env,message", BAD, ids=[m.split(" value")[0][8:] + "=" + m.split("'")[1] for _, _, m in BAD])
def test_bad_value_fails_start_up_with_one_line(args, env, message):
    proc = run(*args, "-c", "print('ran')", env=clean_env(**env), check=False)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == f"cds: {message}\n"


def test_x_option_wins_over_a_bad_variable():
    proc = run("-Xcds_check=hash", "-c", "print('ran')", env=clean_env(PYTHONCDSCHECK="bogus"))
    assert proc.stdout == "ran\n"


@pytest.mark.parametrize("var", ["PYTHONCDS", "PYTHONCDSTRACE", "PYTHONCDSMODE", "PYTHONCDSCHECK",
                                 "PYTHONCDSVERBOSE", "PYCDSMODE", "PYCDSLIST", "PYCDSARCHIVE", "PYCDSVERBOSE"])
def test_empty_variable_counts_as_unset(tmp_path, var):
    proc = run("-c", STATS, env=clean_env(**{var: ""}), cwd=tmp_path)
    assert proc.stderr == ""
    stats = stats_of(proc)
    assert stats["archive"] is None and not stats["tracing"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", ["-E", "-I"])
def test_ignore_environment_ignores_every_cds_variable(ws, flag):
    img = ws.archive("-c", "import json")
    env = clean_env(PYTHONCDS=img, PYTHONCDSTRACE=ws.path / "a.lst", PYTHONCDSCHECK="bogus",
                    PYTHONCDSMODE="bogus", PYTHONCDSVERBOSE="bogus", PYCDSMODE="SHARE",
                    PYCDSARCHIVE=img, PYCDSLIST=ws.path / "b.lst", PYCDSVERBOSE="bogus")
    proc = run(flag, "-c", "import json\n" + STATS, env=env, cwd=ws.path)
    assert proc.stderr == ""
    stats = stats_of(proc)
    assert stats["archive"] is None and not stats["tracing"]
    assert not (ws.path / "a.lst").exists() and not (ws.path / "b.lst").exists()
    env = clean_env(PYCDSMODE="TRACE", PYCDSLIST=ws.path / "b.lst")
    run(flag, "-c", "import json", env=env, cwd=ws.path)
    assert not (ws.path / "b.lst").exists()


def test_seed_trace_writes_bare_names(ws):
    lst = ws.path / "seed.lst"
    run("-c", "import json", env=clean_env(PYCDSMODE="TRACE", PYCDSLIST=lst), cwd=ws.path)
    lines = lst.read_text().splitlines()
    assert "json" in lines and "json.decoder" in lines
    assert all("\t" not in line for line in lines)
    # The dump reads that format, and the archive serves.
    run("-m", "cds", "dump", lst, ws.img, cwd=ws.path)
    proc = run("-c", "import json\n" + STATS, env=clean_env(PYCDSMODE="SHARE", PYCDSARCHIVE=ws.img), cwd=ws.path)
    assert "json.decoder" in stats_of(proc)["served"]


def test_x_trace_keeps_name_and_path(ws):
    ws.trace("-c", "import json")
    assert all("\t" in line for line in ws.lst.read_text().splitlines())


PROG = "import json\nimport json.tool\n"


@pytest.mark.parametrize("how", [["-Xcds_verbose=1"], ["-Xcds_verbose"], "PYTHONCDSVERBOSE", "PYCDSVERBOSE"])
def test_verbose_1_lists_served_and_rejected(ws, how):
    ws.write("mine.py", "X = 1\n")
    img = ws.archive("-c", "import json, mine")
    (ws.path / "mine.py").write_text("X = 22\n")  # changed since the dump: rejected
    args, env = (how, clean_env()) if isinstance(how, list) else ([], clean_env(**{how: "1"}))
    proc = run(*args, f"-Xcds={img}", "-c", "import json, mine", env=env, cwd=ws.path)
    lines = proc.stderr.splitlines()
    assert f"cds: served json.decoder from {img}" in lines
    assert any(l.startswith("cds: rejected mine: ") for l in lines), lines
    assert not any(l.startswith(("cds: missed", "cds: opened")) for l in lines)


def test_verbose_2_also_lists_missed_and_the_opening(ws):
    img = ws.archive("-c", "import json")
    proc = ws.replay("-Xcds_verbose=2", "-c", "import json, fractions")
    lines = proc.stderr.splitlines()
    # Before any module: the opening (and, the default archive being looked up too, that there is none).
    opened = [i for i, l in enumerate(lines) if l.startswith(f"cds: opened {img}: ")]
    assert opened and all(l.startswith("cds: no default archive ") for l in lines[:opened[0]]), lines
    assert f"cds: served json from {img}" in lines
    assert f"cds: missed fractions: not in {img}" in lines


def test_verbose_0_and_default_are_silent(ws):
    ws.archive("-c", "import json")
    assert ws.replay("-Xcds_verbose=0", "-c", "import json, fractions").stderr == ""
    assert ws.replay("-c", "import json, fractions").stderr == ""


@pytest.mark.parametrize("how", [["-Ximporttime"], "PYTHONPROFILEIMPORTTIME"])
def test_importtime_marks_served_modules(ws, how):
    img = ws.archive("-c", "import json")
    args, env = (how, clean_env()) if isinstance(how, list) else ([], clean_env(**{how: "1"}))
    lines = run(*args, f"-Xcds={img}", "-c", "import json, fractions", env=env, cwd=ws.path).stderr.splitlines()
    served = lines.index(f"cds: served json from {img}")
    # The mark comes right before the module's own line (its import ends after its code is served).
    assert any(l.startswith("import time:") and l.endswith("| json") for l in lines[served:]), lines
    assert not any("fractions" in l and l.startswith("cds:") for l in lines)
    assert not any(l.startswith(("cds: rejected", "cds: missed")) for l in lines)


@needs_patch("the -X options in --help-xoptions and --help-env (patch 0002)")
def test_help_describes_every_option_the_readme_lists():
    """The README's option table, --help-xoptions and --help-env name the same options."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = [l for l in readme.splitlines() if l.startswith("| `-X cds")]
    xoptions = {re.match(r"\| `-X (cds\w*)", l).group(1) for l in rows}
    variables = {v for l in rows for v in re.findall(r"`(PYTHONCDS\w*)", l)}
    assert {"cds", "cds_auto", "cds_trace", "cds_mode", "cds_check", "cds_verbose"} <= xoptions
    help_x = run("--help-xoptions").stdout
    help_env = run("--help-env").stdout
    for name in xoptions:
        assert re.search(rf"^-X {name}\b", help_x, re.M), f"--help-xoptions lacks -X {name}"
    for var in variables:
        assert re.search(rf"^{var}\b", help_env, re.M), f"--help-env lacks {var}"
