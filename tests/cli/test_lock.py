"""`preprocess` against an output another process writes: one line naming the PID, or --wait."""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from eventvision.cli.main import main

from eventvision.cache.lock import output_lock

_spec = importlib.util.spec_from_file_location(
    "raw_release", Path(__file__).parents[1] / "cache" / "raw_release.py"
)
raw_release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw_release)


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory) -> Path:
    return raw_release.make_cifar_release(
        tmp_path_factory.mktemp("lock") / "raw", per_class=1, n_events=200
    )


def _preprocess(raw_root: Path, out: Path, *flags: str):
    args = [
        "preprocess",
        "cifar10-dvs",
        str(raw_root),
        str(out),
        "--time-steps",
        "2",
        "--size",
        "8",
    ]
    return CliRunner().invoke(main, [*args, *flags])


def test_a_second_writer_exits_at_once_naming_the_holder(raw_root, tmp_path):
    out = tmp_path / "c.h5"
    with output_lock(out):  # another writer (a kernel lock conflicts across open files)
        result = _preprocess(raw_root, out)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(out) in lines[0] and f"PID {os.getpid()}" in lines[0]
    assert "--wait" in lines[0] and sorted(p.name for p in tmp_path.iterdir()) == ["c.h5.lock"]


def test_wait_waits_for_the_holder_then_builds(raw_root, tmp_path):
    out = tmp_path / "c.h5"
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with output_lock(out):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    threading.Timer(0.3, release.set).start()
    result = _preprocess(raw_root, out, "--wait")
    thread.join()
    assert result.exit_code == 0 and "wrote cache" in result.output, result.output


@pytest.mark.parametrize("planted", ["c.h5.lock", "c.h5.tmp"])
def test_a_planted_link_is_refused_and_its_target_untouched(raw_root, tmp_path, planted):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out" / "c.h5"
    out.parent.mkdir()
    (out.parent / planted).symlink_to(victim)
    result = _preprocess(raw_root, out)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and str(out.parent / planted) in lines[0], result.output
    assert "symbolic link" in lines[0]
    assert victim.read_text() == "precious\n" and not out.exists()
    assert (out.parent / planted).is_symlink()  # left for its owner to look at
