"""An archive is only used by a process that compiles code as the dumping
process did: the optimisation level (-O, -OO) and -X no_debug_ranges change
the code objects an import produces."""

import pytest

from conftest import STATS, run, stats_of, without_stats

MODULE = '''"""Module doc."""
def f():
    """Function doc."""
    assert False, "asserts are on"
    return "asserts are off"
def debug():
    return __debug__
def where():
    return list(where.__code__.co_positions())[-1]
'''

PROG = (
    "import m\n"
    "try:\n    print(m.f())\nexcept AssertionError as e:\n    print(e)\n"
    "print(m.debug(), m.__doc__, m.f.__doc__)\n"
    "print(m.where()[2] is not None)\n" + STATS
)


def dumped_with(ws, *flags):
    """An archive of m dumped by an interpreter run with `flags`."""
    ws.write("m.py", MODULE)
    ws.trace("-c", "import m")
    run(*flags, "-m", "cds", "dump", ws.lst, ws.img, cwd=ws.path)
    return ws.img


def assert_refused(ws, run_flags, reason):
    expected = ws.plain(*run_flags, "-c", PROG)
    proc = ws.replay(*run_flags, "-c", PROG)
    assert without_stats(proc.stdout) == without_stats(expected.stdout)
    assert proc.stderr.splitlines() == [f"cds: warning: cannot use archive {ws.img}: {reason}; importing normally"]
    assert stats_of(proc)["archive"] is None
    proc = ws.replay("-Xcds_mode=on", *run_flags, "-c", PROG, check=False)
    assert proc.returncode == 1 and proc.stdout == "" and reason in proc.stderr


def assert_served(ws, run_flags):
    expected = ws.plain(*run_flags, "-c", PROG)
    proc = ws.replay(*run_flags, "-c", PROG)
    assert proc.stderr == ""
    assert without_stats(proc.stdout) == without_stats(expected.stdout)
    assert "m" in stats_of(proc)["served"]


@pytest.mark.parametrize("flags", [(), ("-O",), ("-OO",), ("-X", "no_debug_ranges"), ("-O", "-X", "no_debug_ranges")])
def test_same_settings_are_served(ws, flags):
    dumped_with(ws, *flags)
    assert_served(ws, flags)


def test_plain_archive_under_O(ws):
    dumped_with(ws)
    assert_refused(ws, ("-O",), "archive dumped with -O level 0, this process runs with -O 1")


def test_O_archive_without_O(ws):
    dumped_with(ws, "-O")
    assert_refused(ws, (), "archive dumped with -O level 1, this process runs with -O 0")


def test_O_archive_under_OO_keeps_no_docstrings(ws):
    dumped_with(ws, "-O")
    assert_refused(ws, ("-OO",), "archive dumped with -O level 1, this process runs with -O 2")
    assert "None None" in ws.replay("-OO", "-c", PROG).stdout


def test_PYTHONOPTIMIZE_counts_as_O(ws):
    from conftest import clean_env

    dumped_with(ws)
    proc = run(f"-Xcds={ws.img}", "-c", PROG, env=clean_env(PYTHONOPTIMIZE="1"), cwd=ws.path)
    assert "this process runs with -O 1" in proc.stderr
    assert without_stats(proc.stdout).startswith("asserts are off")


def test_no_debug_ranges_archive_in_a_plain_process(ws):
    dumped_with(ws, "-X", "no_debug_ranges")
    assert_refused(ws, (), "archive dumped with -X no_debug_ranges, this process runs without it")
    assert without_stats(ws.replay("-c", PROG).stdout).endswith("True")  # columns, as a normal import has


def test_plain_archive_under_no_debug_ranges(ws):
    dumped_with(ws)
    assert_refused(ws, ("-X", "no_debug_ranges"), "archive dumped without -X no_debug_ranges, this process runs with it")
    assert without_stats(ws.replay("-X", "no_debug_ranges", "-c", PROG).stdout).endswith("False")
