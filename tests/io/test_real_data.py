"""Real DVS128 recordings decode to the counts, ranges and spans in PROVENANCE.md."""

from __future__ import annotations

import pytest
from helpers import REAL_DATA

from eventvision.io import read_aedat2

# file: (events, first t, last t, ON (raw p = 1), OFF), from ../shared/data/real/PROVENANCE.md
EXPECTED = {
    "mnist-dvs/mnist_0_scale04_0001.aedat": (15744, 0, 2210588, 7874, 7870),
    "dvs128-aedat2-misc/jaer_MovingDarkBox.aedat": (489834, 946459683, 986269729, 242911, 246923),
    "dvs128-aedat2-misc/ouyang_alex_walking_again.aedat": (19182, 41306606, 48193156, 12080, 7102),
    "dvs128-aedat2-misc/ouyang_neal_walking.aedat": (70304, 135707767, 144951371, 36273, 34031),
    "dvs128-aedat2-misc/ouyang_cam255_right_clamp_test1.aedat": (
        110228,
        52965624,
        70984609,
        51192,
        59036,
    ),
    "dvs128-aedat2-misc/pamchen_DVS128-2017-03-21-short.aedat": (
        130114,
        113476330,
        119657829,
        55123,
        74991,
    ),
    "dvs128-aedat2-misc/biolab_Lapiseira.aedat": (126164, 3799644735, 3818152388, 52463, 73701),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_recording_matches_provenance(name):
    path = REAL_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared real data is not laid out here)")
    count, first, last, on, off = EXPECTED[name]
    events = read_aedat2(path)
    assert len(events) == count
    assert (events["t"][0], events["t"][-1]) == (first, last)
    assert ((events["p"] == 1).sum(), (events["p"] == 0).sum()) == (on, off)
    assert events["x"].max() <= 127 and events["y"].max() <= 127
    if name.startswith("dvs128-aedat2-misc"):
        assert (events["x"].min(), events["x"].max()) == (0, 127)
        assert (events["y"].min(), events["y"].max()) == (0, 127)
