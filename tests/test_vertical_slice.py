"""The three user steps: trace, dump, replay (issue 3's acceptance)."""

from conftest import STATS, needs_patch, run, stats_of, without_stats

JSON_PROGRAM = 'import json; print(json.dumps({"a": [1, 2.5, None]}))'
JSON_MODULES = {"json", "json.decoder", "json.scanner", "json.encoder"}


def test_trace_lists_imported_modules(ws):
    ws.trace("-c", "import json")
    names = ws.traced_names()
    assert JSON_MODULES <= set(names)
    # Each line carries the source path the module was loaded from.
    for line in ws.lst.read_text().splitlines():
        name, path = line.split("\t")
        assert path.endswith(".py") or path == "<frozen>", line


def test_dump_then_replay_json_is_served_and_identical(ws):
    ws.trace("-c", "import json")
    out = ws.dump()
    assert "modules" in out.stdout
    plain = ws.plain("-c", JSON_PROGRAM)
    cds = ws.replay("-c", JSON_PROGRAM + "\n" + STATS)
    assert without_stats(cds.stdout) == without_stats(plain.stdout) == '{"a": [1, 2.5, null]}'
    assert cds.stderr == ""
    stats = stats_of(cds)
    assert stats["archive"] == str(ws.img)
    assert JSON_MODULES <= set(stats["served"])
    assert stats["rejected"] == {}


def test_served_modules_have_the_attributes_of_a_normal_import(ws):
    probe = (
        "import json, json.decoder, sys\n"
        "for m in (json, json.decoder):\n"
        "    s = m.__spec__\n"
        "    print(m.__name__, m.__file__, m.__cached__, getattr(m, '__path__', None), m.__package__)\n"
        "    print(s.name, s.origin, s.cached, s.parent, s.has_location, s.submodule_search_locations)\n"
        "    print(type(m.__loader__).__name__, m.__loader__.name, m.__loader__.path)\n"
    )
    ws.archive("-c", "import json")
    plain = ws.plain("-c", probe)
    cds = ws.replay("-c", probe + STATS)
    assert without_stats(cds.stdout) == without_stats(plain.stdout)
    assert {"json", "json.decoder"} <= set(stats_of(cds)["served"])


def test_no_cds_option_means_no_cds(ws):
    proc = ws.plain("-c", STATS)
    assert stats_of(proc) == {"archive": None, "archives": [], "served": [], "rejected": {}, "modules": 0,
                              "tracing": False, "mapped_at_preferred_base": False, "stamped": False}


@needs_patch("the -X options in --help-all (patch 0002)")
def test_xoptions_are_visible_and_documented(ws):
    ws.archive("-c", "import json")
    proc = ws.replay("-c", "import sys; print(sys._xoptions['cds'])")
    assert proc.stdout.strip() == str(ws.img)
    help_text = run("--help-all").stdout
    for option in ("-X cds=", "-X cds_auto", "-X cds_trace=", "-X cds_mode=", "-X cds_check=", "PYTHONCDS",
                   "PYTHONCDSAUTO", "PYTHONCDSCHECK"):
        assert option in help_text, option


def test_environment_equivalents(ws):
    from conftest import clean_env

    run("-c", "import json", env=clean_env(PYTHONCDSTRACE=ws.lst), cwd=ws.path)
    assert "json.decoder" in ws.traced_names()
    ws.dump()
    proc = run("-c", "import json\n" + STATS, env=clean_env(PYTHONCDS=ws.img), cwd=ws.path)
    assert "json.decoder" in stats_of(proc)["served"]
    # -E ignores the variables.
    proc = run("-E", "-c", STATS, env=clean_env(PYTHONCDS=ws.img), cwd=ws.path)
    assert stats_of(proc)["archive"] is None


def test_seed_interface(ws):
    """PYCDSMODE=TRACE/SHARE as in the original pycds README."""
    from conftest import clean_env

    run("-c", "import json", env=clean_env(PYCDSMODE="TRACE", PYCDSLIST=ws.lst), cwd=ws.path)
    assert "json.scanner" in ws.traced_names()
    run("-c", 'import cds.dump; cds.dump.run_dump("mod.lst", "mod.img")', cwd=ws.path)
    proc = run("-c", "import json\n" + STATS, env=clean_env(PYCDSMODE="SHARE", PYCDSARCHIVE=ws.img), cwd=ws.path)
    assert "json.scanner" in stats_of(proc)["served"]


def test_name_only_list_is_resolved_without_importing(ws):
    ws.write("mod.lst", "json\njson.decoder\n# comment\n\nno_such_module_xyz\n")
    proc = ws.dump()
    assert "skipped no_such_module_xyz" in proc.stderr
    cds = ws.replay("-c", "import json\n" + STATS)
    assert {"json", "json.decoder"} <= set(stats_of(cds)["served"])


def test_reimport_after_del_and_reload_are_served(ws):
    ws.archive("-c", "import json")
    # Functions of a served module share the archived code objects; a
    # normal re-import unmarshals new ones.
    prog = (
        "import sys, importlib, json\n"
        "first = json.dumps.__code__\n"
        "del sys.modules['json']\n"
        "import json as j2\n"
        "assert j2 is not json\n"
        "reimported = j2.dumps.__code__ is first\n"
        "importlib.reload(j2)\n"
        "print(j2.dumps([1]), reimported, j2.dumps.__code__ is first)\n" + STATS
    )
    assert without_stats(ws.plain("-c", prog).stdout) == "[1] False False"
    proc = ws.replay("-c", prog)
    assert without_stats(proc.stdout) == "[1] True True"
    assert "json" in stats_of(proc)["served"]
