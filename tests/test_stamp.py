"""The verified stamp (ARCHIVE.verified): the dump checks the whole archive
once, and a process whose archive file is exactly the one the stamp names
skips the per-module checks. Any other file, or the same file after any
change, is checked module by module as before (docs/DESIGN.md, trust model)."""

import os
import shutil
import stat

from conftest import STATS, STOCK, run, stats_of, without_stats

PROG = "import json\nprint(json.dumps({'a': [1, 2.5, None]}))\n" + STATS


def stamp_of(img):
    return img.with_name(img.name + ".verified")


def served(ws, img=None, *xopts):
    proc = ws.replay(*xopts, "-c", PROG, img=img)
    assert without_stats(proc.stdout) == without_stats(ws.plain("-c", PROG).stdout)
    return proc, stats_of(proc)


def test_the_dump_stamps_and_the_stamp_is_honoured(ws):
    img = ws.archive("-c", "import json")
    text = stamp_of(img).read_text()
    assert text.startswith("cds-stamp 2\n") and f"\nino {img.stat().st_ino}\n" in text
    proc, stats = served(ws, None, "-Xcds_verbose=2")
    assert stats["stamped"] and "json.decoder" in stats["served"] and not stats["rejected"]
    assert "verified by its stamp" in proc.stderr


def test_a_touched_archive_is_checked_again_and_verify_restamps(ws):
    img = ws.archive("-c", "import json")
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))  # same bytes and mtime: only ctime moves
    proc, stats = served(ws, None, "-Xcds_verbose=2")
    assert not stats["stamped"] and "json.decoder" in stats["served"]
    assert "names another file or an earlier state of it" in proc.stderr
    out = run("-m", "cds", "verify", img).stdout
    assert "every module passes its checks; stamped" in out
    assert served(ws)[1]["stamped"]


def test_a_stamp_does_not_cover_an_edited_archive(ws):
    """Bytes changed after the stamp: checked again, and the damaged module
    refused as without a stamp (the checksum tells)."""
    ws.write("stamped_mod.py", "MARKER = 'stamp-marker-0123456789'\n")
    img = ws.archive("-c", "import stamped_mod")
    saved = stamp_of(img).read_bytes()
    b = bytearray(img.read_bytes())
    at = b.find(b"stamp-marker-0123456789")
    b[at] ^= 0x20
    img.write_bytes(b)  # in place: same inode, same size
    stamp_of(img).write_bytes(saved)
    proc = ws.replay("-c", "import stamped_mod; print(stamped_mod.MARKER)\n" + STATS)
    assert without_stats(proc.stdout) == "stamp-marker-0123456789"
    stats = stats_of(proc)
    assert not stats["stamped"] and "checksum" in stats["rejected"]["stamped_mod"]


def test_a_copied_stamp_names_the_original_only(ws, tmp_path_factory):
    img = ws.archive("-c", "import json")
    other = tmp_path_factory.mktemp("copy") / "copy.img"
    shutil.copy2(img, other)
    shutil.copy2(stamp_of(img), stamp_of(other))
    proc, stats = served(ws, other, "-Xcds_verbose=2")
    assert not stats["stamped"] and "json.decoder" in stats["served"]
    assert "names another file" in proc.stderr


def test_a_symlinked_archive_finds_the_stamp_of_its_real_file(ws):
    img = ws.archive("-c", "import json")
    link = ws.path / "link.img"
    link.symlink_to(img)
    assert served(ws, link)[1]["stamped"]


def test_untrusted_or_malformed_stamps_are_ignored(ws):
    img = ws.archive("-c", "import json")
    stamp = stamp_of(img)
    good = stamp.read_text()

    stamp.chmod(0o664)
    proc, stats = served(ws, None, "-Xcds_verbose=2")
    assert not stats["stamped"] and "stamp is writable by group or others" in proc.stderr

    stamp.unlink()
    stamp.write_text(good.replace("cds-stamp 2", "cds-stamp 9"))
    proc, stats = served(ws, None, "-Xcds_verbose=2")
    assert not stats["stamped"] and "is not a stamp" in proc.stderr

    stamp.unlink()
    (ws.path / "elsewhere").write_text(good)
    stamp.symlink_to(ws.path / "elsewhere")
    proc, stats = served(ws, None, "-Xcds_verbose=2")
    assert not stats["stamped"] and "cannot open" in proc.stderr

    stamp.unlink()
    stamp.write_text(good)
    assert served(ws)[1]["stamped"]


def test_a_stamp_of_another_interpreter_image_still_serves_correctly(ws):
    """The stamp's anchor (where the stamping interpreter's types were) differs
    from this process's: every record is applied, as for an archive mapped
    elsewhere."""
    img = ws.archive("-c", "import json")
    stamp = stamp_of(img)
    lines = stamp.read_text().splitlines(keepends=True)
    # `anchor none` where the interpreter's image moves with ASLR (a PIE or
    # shared-libpython stock build): nothing of it is pre-written, but the
    # archive's own pointers are (`internal yes`; where the image does not
    # move, slots hold its static strs too: `internal no`). Either way a
    # process with another image serves correctly.
    assert lines[-2].startswith("anchor 0x" if not STOCK else "anchor ")
    assert lines[-1] in ("internal yes\n", "internal no\n")
    lines[-2] = "anchor 0x10\n"
    mode = stamp.stat().st_mode
    stamp.unlink()
    stamp.write_text("".join(lines))
    stamp.chmod(stat.S_IMODE(mode))
    proc, stats = served(ws)
    assert stats["stamped"] and "json.decoder" in stats["served"] and not stats["rejected"]


def test_verify_refuses_a_corrupt_archive(ws):
    ws.write("stamped_mod.py", "MARKER = 'stamp-marker-0123456789'\n")
    img = ws.archive("-c", "import stamped_mod")
    b = bytearray(img.read_bytes())
    b[b.find(b"stamp-marker-0123456789")] ^= 0x20
    img.write_bytes(b)
    proc = run("-m", "cds", "verify", img, check=False)
    assert proc.returncode == 1 and proc.stdout == "", proc.stdout
    assert proc.stderr.startswith("cds: ") and proc.stderr.count("\n") == 1 and "checksum" in proc.stderr, proc.stderr
    # The dump's stamp names the file before the edit: not honoured.
    assert not stats_of(ws.replay("-c", STATS))["stamped"]


def test_no_stamp_is_fine(ws):
    img = ws.archive("-c", "import json")
    stamp_of(img).unlink()
    proc, stats = served(ws, None, "-Xcds_verbose=2")
    assert not stats["stamped"] and "json.decoder" in stats["served"]
    assert "modules checked at first import" in proc.stderr and "stamp of" not in proc.stderr
