"""Per-module staleness: exactly the module whose resolution or source
changed is imported normally (and reported), the rest are still served."""

import os
import shutil

from conftest import STATS, clean_env, run, stats_of, without_stats


def served_and_rejected(proc):
    s = stats_of(proc)
    return set(s["served"]), s["rejected"]


def test_new_module_earlier_on_sys_path_shadows(ws):
    ws.write("lib/mymod.py", "WHERE = 'lib'\n")
    ws.write("lib/other.py", "WHERE = 'other'\n")
    env = clean_env(PYTHONPATH=ws.path / "lib")
    run(f"-Xcds_trace={ws.lst}", "-c", "import mymod, other", env=env, cwd=ws.path)
    ws.dump()
    # A module of the same name appears in the current directory, which is
    # searched first for -c.
    ws.write("mymod.py", "WHERE = 'cwd'\n")
    proc = run(f"-Xcds={ws.img}", "-c", "import mymod, other; print(mymod.WHERE, other.WHERE)\n" + STATS, env=env, cwd=ws.path)
    assert without_stats(proc.stdout) == "cwd other"
    served, rejected = served_and_rejected(proc)
    assert "other" in served and "mymod" not in served
    assert "shadowed" in rejected["mymod"]


def archive_lib_mymod_behind(ws, earlier):
    """Archives lib/mymod.py (WHERE = 'lib') traced with directory `earlier`
    before lib on PYTHONPATH; returns that environment."""
    ws.write("lib/mymod.py", "WHERE = 'lib'\n")
    env = clean_env(PYTHONPATH=os.pathsep.join([str(earlier), str(ws.path / "lib")]))
    run(f"-Xcds_trace={ws.lst}", "-c", "import mymod", env=env, cwd=ws.path)
    ws.dump()
    return env


def test_a_directory_is_seen_as_its_finder_sees_it(ws):
    # A module written into an earlier search path directory behind an
    # unchanged mtime: importlib's FileFinder keeps the names it listed, so
    # a normal import does not see it, and neither does cds (its listing,
    # its own or the finder's, is revalidated by mtime the same way): the
    # archived module is served, and the program computes what it computes
    # without cds.
    ws.write("early/first.py", "")
    early = ws.path / "early"
    env = archive_lib_mymod_behind(ws, early)
    program = (
        "import os, sys\n"
        "sys.dont_write_bytecode = True\n"  # no __pycache__ to move the mtime
        "import first\n"  # importlib lists `early` now
        f"early = {str(early)!r}\n"
        "before = os.stat(early)\n"
        "with open(os.path.join(early, 'mymod.py'), 'w') as f:\n"
        "    f.write(\"WHERE = 'early'\\n\")\n"
        "os.utime(early, ns=(before.st_atime_ns, before.st_mtime_ns))\n"
        "import mymod\n"
        "print(mymod.WHERE)\n"
    )
    plain = run("-c", program, env=env, cwd=ws.path)
    (early / "mymod.py").unlink()
    proc = run(f"-Xcds={ws.img}", "-c", program + STATS, env=env, cwd=ws.path)
    assert plain.stdout == "lib\n" and without_stats(proc.stdout) == "lib"
    assert "mymod" in stats_of(proc)["served"]


def test_an_entry_importlib_has_no_finder_for_is_skipped_as_importlib_skips_it(ws):
    # PathFinder caches None for a search path entry no path hook takes (a
    # directory missing when first searched, as python311.zip on every
    # sys.path) and skips it from then on, even once a module appears
    # there: cds skips it too, without a look, and serves the archived one.
    later = ws.path / "later"
    env = archive_lib_mymod_behind(ws, later)
    program = (
        "import os, sys\n"
        "sys.dont_write_bytecode = True\n"
        "try:\n"
        "    import not_anywhere\n"
        "except ImportError:\n"
        "    pass\n"
        f"later = {str(later)!r}\n"
        "assert sys.path_importer_cache[later] is None\n"
        "os.mkdir(later)\n"
        "with open(os.path.join(later, 'mymod.py'), 'w') as f:\n"
        "    f.write(\"WHERE = 'later'\\n\")\n"
        "import mymod\n"
        "print(mymod.WHERE)\n"
    )
    plain = run("-c", program, env=env, cwd=ws.path)
    shutil.rmtree(later)
    proc = run(f"-Xcds={ws.img}", "-c", program + STATS, env=env, cwd=ws.path)
    assert plain.stdout == "lib\n" and without_stats(proc.stdout) == "lib"
    assert "mymod" in stats_of(proc)["served"]


def test_after_a_chdir_the_current_directory_is_another_entry(ws):
    # '' on sys.path is the current directory at each search: after a chdir
    # into a directory holding the module, a normal import finds it there,
    # even if that directory has the mtime of the one cds looked at for ''
    # before. cds looks at the directory by name: it sees the new one.
    ws.write("lib/mymod.py", "WHERE = 'lib'\n")
    ws.write("lib/other.py", "")
    ws.write("here/placeholder.txt", "")
    ws.write("there/mymod.py", "WHERE = 'there'\n")
    here, there = ws.path / "here", ws.path / "there"
    env = clean_env(PYTHONPATH=ws.path / "lib")
    run(f"-Xcds_trace={ws.lst}", "-c", "import other, mymod", env=env, cwd=here)
    ws.dump()
    program = (
        "import os, sys\n"
        "sys.dont_write_bytecode = True\n"
        "import other\n"  # searched '' (here) first
        f"st = os.stat({str(here)!r})\n"
        f"os.utime({str(there)!r}, ns=(st.st_atime_ns, st.st_mtime_ns))\n"
        f"os.chdir({str(there)!r})\n"
        "import mymod\n"
        "print(mymod.WHERE)\n"
    )
    plain = run("-c", program, env=env, cwd=here)
    proc = run(f"-Xcds={ws.img}", "-c", program + STATS, env=env, cwd=here)
    assert plain.stdout == "there\n" and without_stats(proc.stdout) == "there"
    served, rejected = served_and_rejected(proc)
    assert "other" in served and "shadowed" in rejected["mymod"]


def test_package_next_to_archived_module_shadows(ws):
    ws.write("mymod.py", "WHERE = 'module'\n")
    ws.archive("-c", "import mymod")
    ws.write("mymod/__init__.py", "WHERE = 'package'\n")
    proc = ws.replay("-c", "import mymod; print(mymod.WHERE)\n" + STATS)
    assert without_stats(proc.stdout) == "package"
    assert "shadowed" in stats_of(proc)["rejected"]["mymod"]


def test_submodule_shadowed_inside_its_package(ws):
    ws.write("pkg/__init__.py", "")
    ws.write("pkg/sub.py", "WHERE = 'module'\n")
    ws.archive("-c", "import pkg.sub")
    ws.write("pkg/sub/__init__.py", "WHERE = 'package'\n")
    proc = ws.replay("-c", "import pkg.sub; print(pkg.sub.WHERE)\n" + STATS)
    assert without_stats(proc.stdout) == "package"
    served, rejected = served_and_rejected(proc)
    assert "pkg" in served and "shadowed" in rejected["pkg.sub"]


def test_directory_leaving_sys_path(ws):
    ws.write("lib/mymod.py", "WHERE = 'lib'\n")
    ws.write("lib2/mymod.py", "WHERE = 'lib2'\n")
    run(f"-Xcds_trace={ws.lst}", "-c", "import mymod", env=clean_env(PYTHONPATH=ws.path / "lib"), cwd=ws.path)
    ws.dump()
    proc = run(f"-Xcds={ws.img}", "-c", "import mymod; print(mymod.WHERE)\n" + STATS, env=clean_env(PYTHONPATH=ws.path / "lib2"), cwd=ws.path)
    assert without_stats(proc.stdout) == "lib2"
    assert "no longer on the search path" in stats_of(proc)["rejected"]["mymod"]


def test_pth_file_change_is_seen(ws):
    """A change of sys.path by any means (.pth, PYTHONPATH, code) is honoured."""
    ws.write("a/mymod.py", "WHERE = 'a'\n")
    ws.write("b/mymod.py", "WHERE = 'b'\n")
    ws.archive("-c", "import sys; sys.path.insert(0, 'a'); import mymod")
    proc = ws.replay("-c", "import sys; sys.path.insert(0, 'b'); sys.path.insert(1, 'a'); import mymod; print(mymod.WHERE)\n" + STATS)
    assert without_stats(proc.stdout) == "b"
    assert "mymod" in stats_of(proc)["rejected"]


def test_hash_check_ignores_mtime_but_sees_content(ws):
    mod = ws.write("mymod.py", "VALUE = 1\n")
    ws.write("same.py", "VALUE = 2\n")
    ws.archive("-c", "import mymod, same")
    same = ws.path / "same.py"
    os.utime(same, ns=(same.stat().st_atime_ns, same.stat().st_mtime_ns + 10**10))  # touched, not changed
    mod.write_text("VALUE = 3\n")  # same size, new content
    os.utime(mod, ns=(mod.stat().st_atime_ns, mod.stat().st_mtime_ns + 10**10))
    prog = "import mymod, same; print(mymod.VALUE, same.VALUE)\n" + STATS
    proc = ws.replay("-Xcds_check=hash", "-c", prog)
    assert without_stats(proc.stdout) == "3 2"
    served, rejected = served_and_rejected(proc)
    assert "same" in served and "content" in rejected["mymod"]
    # The default check goes by mtime: both are stale.
    served, rejected = served_and_rejected(ws.replay("-c", prog))
    assert {"mymod", "same"} <= set(rejected)


def test_trust_mode_skips_checks(ws):
    """-X cds_check=none: for immutable deployments; no stat, no shadow check.
    So a changed or shadowed source goes unseen: the archived code is run."""
    mod = ws.write("mymod.py", "VALUE = 1\n")
    ws.write("lib/other.py", "VALUE = 'archived'\n")
    env = clean_env(PYTHONPATH=ws.path / "lib")
    run(f"-Xcds_trace={ws.lst}", "-c", "import mymod, other", env=env, cwd=ws.path)
    ws.dump()
    mod.write_text("VALUE = 22222\n")  # another size and mtime
    ws.write("other.py", "VALUE = 'shadow'\n")  # earlier on sys.path than lib/
    prog = "import mymod, other; print(mymod.VALUE, other.VALUE)\n" + STATS
    proc = run(f"-Xcds={ws.img}", "-Xcds_check=none", "-c", prog, env=env, cwd=ws.path)
    assert without_stats(proc.stdout) == "1 archived"
    served, rejected = served_and_rejected(proc)
    assert {"mymod", "other"} <= served and rejected == {}
    # The default check sees both.
    proc = run(f"-Xcds={ws.img}", "-c", prog, env=env, cwd=ws.path)
    assert without_stats(proc.stdout) == "22222 shadow"
    assert {"mymod", "other"} <= set(served_and_rejected(proc)[1])
    # The environment variable is the same setting.
    proc = run("-c", prog, env=clean_env(PYTHONPATH=ws.path / "lib", PYTHONCDS=ws.img, PYTHONCDSCHECK="none"), cwd=ws.path)
    assert without_stats(proc.stdout) == "1 archived"


def test_bad_check_value_is_a_clear_error(ws):
    proc = ws.replay("-Xcds_check=sometimes", "-c", "pass", check=False)
    assert proc.returncode == 1
    assert proc.stderr == "cds: invalid -X cds_check value 'sometimes': expected stat, hash or none\n"


def release(ws, name, value):
    """A release directory holding m.py; every release's m.py has the same size and mtime."""
    mod = ws.write(f"{name}/m.py", f"VALUE = {value}\n")
    os.utime(mod, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    return mod


def test_release_symlink_switch_with_equal_size_and_mtime(ws):
    """current -> r1 switched to r2: same path, size and mtime, another file."""
    release(ws, "r1", 1)
    release(ws, "r2", 2)
    os.symlink("r1", ws.path / "current")
    env = clean_env(PYTHONPATH=ws.path / "current")
    prog = "import m; print(m.VALUE)\n" + STATS
    run(f"-Xcds_trace={ws.lst}", "-c", "import m", env=env, cwd=ws.path)
    ws.dump()
    assert "m" in stats_of(run(f"-Xcds={ws.img}", "-c", prog, env=env, cwd=ws.path))["served"]
    os.symlink("r2", ws.path / "current.new")
    os.replace(ws.path / "current.new", ws.path / "current")
    proc = run(f"-Xcds={ws.img}", "-c", prog, env=env, cwd=ws.path)
    assert without_stats(proc.stdout) == "2"
    why = stats_of(proc)["rejected"]["m"]
    assert "resolves to another file" in why and "r2/m.py" in why and "r1/m.py" in why


def test_tree_copied_with_mtimes_is_still_served(ws):
    """A tree replaced by a copy that keeps mtimes (docker COPY, cp -a): new
    inodes at the same paths, the same files."""
    import shutil

    release(ws, "app", 1)
    ws.write("app/pkg/__init__.py", "NAME = 'pkg'\n")
    env = clean_env(PYTHONPATH=ws.path / "app")
    prog = "import m, pkg; print(m.VALUE, pkg.NAME)\n" + STATS
    run(f"-Xcds_trace={ws.lst}", "-c", "import m, pkg", env=env, cwd=ws.path)
    ws.dump()
    shutil.copytree(ws.path / "app", ws.path / "app.copy", copy_function=shutil.copy2)
    os.rename(ws.path / "app", ws.path / "app.old")
    os.rename(ws.path / "app.copy", ws.path / "app")
    shutil.rmtree(ws.path / "app.old")
    proc = run(f"-Xcds={ws.img}", "-c", prog, env=env, cwd=ws.path)
    assert without_stats(proc.stdout) == "1 pkg"
    assert {"m", "pkg"} <= set(stats_of(proc)["served"]) and stats_of(proc)["rejected"] == {}
