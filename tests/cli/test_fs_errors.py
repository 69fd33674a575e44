"""Filesystem errors are one-line errors in every command, and nothing that existed changes.

An unwritable folder is made with chmod where the tests run as a normal user; as root (who
writes anyway) the write calls are patched to fail with EACCES for paths inside it.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner
from eventvision.cli.main import main
from helpers import deny_writes_under

_spec = importlib.util.spec_from_file_location(
    "raw_release", Path(__file__).parents[1] / "cache" / "raw_release.py"
)
raw_release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw_release)


def fails_in_one_line(*args) -> str:
    """The command exits 1 with one ``Error:`` line and no traceback; returns that line."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    lines = [line for line in result.output.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("preprocessing")]  # progress label
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def unwritable(tmp_path, monkeypatch):
    """A folder holding one file, that nothing can be written into."""
    folder = (tmp_path / "readonly").absolute()
    folder.mkdir()
    (folder / "keep.txt").write_text("existing")
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
    else:
        deny_writes_under(folder, monkeypatch)
        yield folder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = raw_release.make_cifar_release(
        tmp_path_factory.mktemp("fs") / "raw", per_class=1, n_events=200
    )
    out = root.parent / "c.h5"
    result = CliRunner().invoke(
        main, ["preprocess", "cifar10-dvs", str(root), str(out), "--time-steps", "2", "--size", "8"]
    )
    assert result.exit_code == 0, result.output
    shard = root.parent / "s.h5"
    args = ["preprocess", "cifar10-dvs", str(root), str(shard), "--time-steps", "2", "--size", "8"]
    assert CliRunner().invoke(main, [*args, "--shard", "0/1"]).exit_code == 0
    return root, out


def test_preprocess_into_an_unwritable_folder(built, unwritable):
    root, _ = built
    before = snapshot(unwritable)
    line = fails_in_one_line("preprocess", "cifar10-dvs", root, unwritable / "c.h5")
    assert str(unwritable / "c.h5") in line and snapshot(unwritable) == before


def test_merge_into_an_unwritable_folder(built, unwritable):
    root, _ = built
    before = snapshot(unwritable)
    line = fails_in_one_line("cache", "merge", unwritable / "m.h5", root.parent / "s.h5")
    assert "m.h5" in line and snapshot(unwritable) == before


def test_synth_into_an_unwritable_folder(unwritable):
    before = snapshot(unwritable)
    line = fails_in_one_line("synth", "cifar10-dvs", unwritable / "raw", "--per-class", "1")
    assert str(unwritable / "raw") in line and snapshot(unwritable) == before


def test_show_into_an_unwritable_folder_keeps_the_old_picture(built, unwritable, monkeypatch):
    _, cache = built
    before = snapshot(unwritable)
    line = fails_in_one_line("show", cache, "--out", unwritable / "keep.txt.png")
    assert "keep.txt.png" in line and snapshot(unwritable) == before


def test_show_bad_outputs_are_one_line(built, tmp_path):
    _, cache = built
    assert "unknown image extension '.gifx'" in fails_in_one_line(
        "show", cache, "--out", tmp_path / "x.gifx"
    )
    assert "is a folder" in fails_in_one_line("show", cache, "--out", tmp_path)
    assert "is a folder" in fails_in_one_line("preprocess", "cifar10-dvs", built[0], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_parent_folders_are_created(built, tmp_path):
    root, cache = built
    png = tmp_path / "new" / "deeper" / "x.png"
    result = CliRunner().invoke(main, ["show", str(cache), "--out", str(png)])
    assert result.exit_code == 0 and png.is_file(), result.output
    out = tmp_path / "other" / "c.h5"
    args = ["preprocess", "cifar10-dvs", str(root), str(out), "--time-steps", "2", "--size", "8"]
    assert CliRunner().invoke(main, args).exit_code == 0 and out.is_file()


def test_no_space_left_is_one_line_and_leaves_no_cache(built, tmp_path, monkeypatch):
    root, _ = built
    real_h5 = h5py.File

    class Full(real_h5):  # the disk fills up when the first part file is created
        def __init__(self, name, mode="r", *args, **kwargs):
            if mode != "r":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fsdecode(name))
            super().__init__(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", Full)
    out = tmp_path / "c.h5"
    line = fails_in_one_line(
        "preprocess", "cifar10-dvs", root, out, "--time-steps", "2", "--size", "8"
    )
    assert "No space left on device" in line and not out.exists()


# `eventvision ...` in a process whose files may not grow past argv[1] bytes (EFBIG), as on a
# full disk: HDF5 used to print "Exception ignored" tracebacks and crash (SIGSEGV) at close.
LIMITED_FILES = textwrap.dedent(
    """
    import resource, signal, sys
    from eventvision.cli.main import main
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]),) * 2)
    main(sys.argv[2:])
    """
)


def _preprocess_limited(limit: int, root: Path, out: Path) -> subprocess.CompletedProcess:
    args = ["preprocess", "cifar10-dvs", str(root), str(out), "--store", "events", "--workers", "2"]
    return subprocess.run(
        [sys.executable, "-c", LIMITED_FILES, str(limit), *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_full_disk_is_one_line_keeps_finished_parts_and_resumes(tmp_path):
    root = raw_release.make_cifar_release(tmp_path / "raw", per_class=4, n_events=3000)
    whole = tmp_path / "whole.h5"  # 40 samples: 3 parts of 16, 16 and 8
    ok = ["preprocess", "cifar10-dvs", str(root), str(whole), "--store", "events"]
    assert CliRunner().invoke(main, ok).exit_code == 0
    size = whole.stat().st_size
    for limit, failing in ((size // 10, "block-000000.h5.tmp"), (size * 2 // 3, "c.h5.tmp")):
        out = tmp_path / "c.h5"
        proc = _preprocess_limited(limit, root, out)
        assert proc.returncode == 1, proc.stderr  # not -11
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
        assert failing in lines[0] and lines[0].endswith("cannot write: File too large")
        # a part another worker was writing may stay as .tmp (it never looks finished); a
        # resumed build removes it
        assert not out.exists() and not (tmp_path / "c.h5.tmp").exists()
        parts = sorted(p.name for p in (tmp_path / "c.h5.parts").glob("block-*.h5"))
        assert parts == (
            [] if failing.startswith("block") else [f"block-00000{i}.h5" for i in range(3)]
        )
    resumed = CliRunner().invoke(
        main, ["preprocess", "cifar10-dvs", str(root), str(out), "--store", "events"]
    )
    assert resumed.exit_code == 0 and "resumed after 3 blocks" in resumed.output, resumed.output
    raw_release.assert_same_content(out, whole)
