"""`create_h5`: whatever stops the block, the temporary file does not stay behind."""

from __future__ import annotations

import pytest

from eventvision.cache.layout import create_h5


@pytest.mark.parametrize("error", [ValueError("bad sample"), KeyboardInterrupt()])
def test_an_error_in_the_block_removes_the_file(tmp_path, error):
    path = tmp_path / "out.h5.tmp"
    with pytest.raises(type(error)):
        with create_h5(path) as f:
            f["x"] = [1, 2, 3]
            raise error
    assert not path.exists()


def test_a_finished_block_leaves_the_file(tmp_path):
    path = tmp_path / "out.h5.tmp"
    with create_h5(path) as f:
        f["x"] = [1, 2, 3]
    assert path.is_file()
