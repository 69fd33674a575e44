"""Temporaries created fresh and links replaced, never followed (eventvision.files, create_h5)."""

from __future__ import annotations

import pytest

from eventvision.cache.layout import create_h5
from eventvision.errors import PathError
from eventvision.files import create_fresh, write_atomic


def test_temporaries_are_fresh_regular_files(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "x.tmp").symlink_to(victim)
    (tmp_path / "d.tmp").mkdir()
    for name in ("x.tmp", "d.tmp"):
        with pytest.raises(PathError, match="symbolic link or not a regular file"):
            create_fresh(tmp_path / name)
    with pytest.raises(PathError, match="symbolic link"):
        with create_h5(tmp_path / "x.tmp"):
            pass
    (tmp_path / "stale.tmp").write_text("left by a killed write")
    with create_h5(tmp_path / "stale.tmp") as f:  # a stale regular temporary is replaced
        f["a"] = [1, 2]
    assert victim.read_text() == "precious\n"
    assert (tmp_path / "stale.tmp").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"


def test_write_atomic_replaces_a_link_not_its_target(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "data.json").symlink_to(victim)
    write_atomic(tmp_path / "data.json", "{}\n")
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "data.json").is_symlink()
    assert (tmp_path / "data.json").read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.json", "victim.txt"]
