"""Layers: an archive named with `-X cds` serves in front of the build's
default archive. `python -m cds dump` leaves to the default archive what it
serves fresh and lays the rest out to serve beside it (its own preferred
base and code serials); a module is looked up in the named archive first,
then in the default one. A whole archive (`--whole`) serves alone.

The default archive here is a small one (json, textwrap and what they
import), written into a PYTHONHOME of this module's own (conftest `home`)."""

import json

import pytest

from conftest import STATS, in_home, needs_patch, stats_of, without_stats

APP = "import helper, json, textwrap\nprint(helper.greet(json.dumps(textwrap.wrap('a b', 1))))\n"
HELPER = "def greet(x):\n    return 'hello ' + x\n"
EXPECTED = 'hello ["a", "b"]'


@pytest.fixture(scope="module")
def default(home, tmp_path_factory):
    """The default archive of `home`: json and textwrap, a base layer."""
    work = tmp_path_factory.mktemp("default")
    path = in_home(home, "-m", "cds", "where").stdout.strip()
    lst = work / "stdlib.lst"
    in_home(home, f"-Xcds_trace={lst}", "-Xcds_mode=off", "-c", "import json, textwrap")
    in_home(home, "-m", "cds", "dump", "-q", "--whole", lst, path)
    return path


@pytest.fixture
def app(home, tmp_path):
    """A directory with helper.py, and how to run the program from there."""
    (tmp_path / "helper.py").write_text(HELPER)

    def py(*args, **kw):
        return in_home(home, *args, PYTHONPATH=tmp_path, **kw)

    py.dir = tmp_path
    return py


def info(py, img):
    return json.loads(py("-m", "cds", "info", "--json", img).stdout)


def test_the_application_archive_holds_what_the_default_lacks(app, default):
    lst, img = app.dir / "app.lst", app.dir / "app.img"
    app(f"-Xcds_trace={lst}", "-Xcds_mode=off", "-c", APP)
    wrote = app("-m", "cds", "dump", lst, img).stdout
    assert f"more from the default archive {default}" in wrote
    report = info(app, img)
    names = {m["name"] for m in report["modules"]}
    assert "helper" in names and not names & {"json", "json.decoder", "textwrap"}
    assert report["layer"] == "application"
    assert info(app, default)["layer"] == "base"

    proc = app(f"-Xcds={img}", "-c", APP + STATS)
    assert without_stats(proc.stdout) == EXPECTED and proc.stderr == ""
    stats = stats_of(proc)
    assert stats["archive"] == str(img) and stats["archives"] == [str(img), default]
    assert {"helper", "json", "json.decoder", "textwrap"} <= set(stats["served"])
    assert stats["rejected"] == {}
    # Each at its own preferred base: nothing to relocate in either.
    assert stats["mapped_at_preferred_base"]


def test_the_named_archive_is_looked_up_first(app, default):
    """An application layer that holds json too serves it instead of the default."""
    lst, img = app.dir / "app.lst", app.dir / "app.img"
    app(f"-Xcds_trace={lst}", "-Xcds_mode=off", "-c", APP)
    write = f"from cds.dump import read_list, _dump_listed; _dump_listed(read_list({str(lst)!r}), [], {str(img)!r}, layered=True)"
    app("-c", write)
    proc = app(f"-Xcds={img}", "-Xcds_verbose", "-c", APP + STATS)
    assert without_stats(proc.stdout) == EXPECTED
    assert f"cds: served json from {img}" in proc.stderr.splitlines()
    assert stats_of(proc)["archives"] == [str(img), default]


def test_a_whole_archive_serves_alone(app, default):
    lst, img = app.dir / "app.lst", app.dir / "app.img"
    app(f"-Xcds_trace={lst}", "-Xcds_mode=off", "-c", APP)
    app("-m", "cds", "dump", "-q", "--whole", lst, img)
    assert info(app, img)["layer"] == "base"
    proc = app(f"-Xcds={img}", "-Xcds_verbose=2", "-c", APP + STATS)
    assert without_stats(proc.stdout) == EXPECTED
    stats = stats_of(proc)
    assert stats["archives"] == [str(img)]
    assert {"helper", "json", "textwrap"} <= set(stats["served"])
    assert f"cds: default archive {default} not used: its code serials overlap those of {img}" in proc.stderr


def test_auto_writes_an_application_layer(app, default):
    img = app.dir / "auto.img"
    first = app(f"-Xcds={img}", "-Xcds_auto", "-c", APP + STATS)
    assert without_stats(first.stdout) == EXPECTED and first.stderr == ""
    assert stats_of(first)["archives"] == [default]
    report = info(app, img)
    assert report["layer"] == "application"
    assert {m["name"] for m in report["modules"]} & {"helper", "json"} == {"helper"}
    second = stats_of(app(f"-Xcds={img}", "-Xcds_auto", "-c", APP + STATS))
    assert second["archives"] == [str(img), default]
    assert {"helper", "json", "textwrap"} <= set(second["served"]) and second["rejected"] == {}


@needs_patch("the start-up hook that opens the default archive unasked (patch 0003)")
def test_share_layers_on_the_default_archive(app, default):
    lst, img = app.dir / "app.lst", app.dir / "app.img"
    app(f"-Xcds_trace={lst}", "-Xcds_mode=off", "-c", APP)
    app("-m", "cds", "dump", "-q", lst, img)
    late = "import cds, json\nassert cds.share(%r)\n" % str(img)
    proc = app("-c", late + APP + STATS)
    assert without_stats(proc.stdout) == EXPECTED
    stats = stats_of(proc)
    assert stats["archives"] == [str(img), default]
    assert {"helper", "json"} <= set(stats["served"])


def test_objects_of_both_layers_outlive_their_modules(app, default):
    """Modules of both layers dropped and imported again, collected in
    between: the dealloc guard covers both mappings."""
    lst, img = app.dir / "app.lst", app.dir / "app.img"
    app(f"-Xcds_trace={lst}", "-Xcds_mode=off", "-c", APP)
    app("-m", "cds", "dump", "-q", lst, img)
    churn = (
        "import gc, sys\n"
        "for i in range(20):\n"
        "    import helper, json, textwrap\n"
        "    out = helper.greet(json.dumps(textwrap.wrap('a b', 1)))\n"
        "    for name in [n for n in sys.modules if n.split('.')[0] in ('helper', 'json', 'textwrap')]:\n"
        "        del sys.modules[name]\n"
        "    del helper, json, textwrap\n"
        "    gc.collect()\n"
        "print(out)\n"
    )
    proc = app(f"-Xcds={img}", "-c", churn + STATS)
    assert without_stats(proc.stdout) == EXPECTED
    assert {"helper", "json"} <= set(stats_of(proc)["served"])
