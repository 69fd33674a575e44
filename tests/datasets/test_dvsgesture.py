from __future__ import annotations

import numpy as np
import pytest
from helpers import random_events

from eventvision.datasets import DVSGesture, cut_recording
from eventvision.errors import DatasetError, FormatError
from eventvision.io import read_aedat31, write_aedat31, write_labels_csv, write_trials

# recording: labels csv rows (class, start, end); random_events spans t0 .. t0 + 2 s
RECORDINGS = {
    # class 8 twice, 3/4 and 5/4 out of order, as in the real user01_natural csv
    "user01_natural": [
        (1, 100_000, 300_000),
        (3, 300_000, 500_000),
        (5, 500_000, 700_000),
        (4, 700_000, 900_000),
        (8, 900_000, 1_100_000),
        (8, 1_200_000, 1_500_000),
    ],
    "user02_led": [(11, 1_000_000, 1_900_000)],  # a single row: spikingjelly crashes on it
    "user03_lab": [(2, 50_000, 600_000), (6, 1_800_000, 2_600_000), (7, 3_000_000, 3_500_000)],
}
CRLF = {"user03_lab"}


def _write_release(
    root, recordings=RECORDINGS, train=("user01_natural", "user02_led"), test=("user03_lab",)
):
    folder = root / "DvsGesture"
    folder.mkdir()
    for i, (name, rows) in enumerate(recordings.items()):
        write_aedat31(folder / f"{name}.aedat", random_events(20_000, seed=i), packet_events=1000)
        write_labels_csv(
            folder / f"{name}_labels.csv", rows, line_end="\r\n" if name in CRLF else "\n"
        )
    write_trials(folder / "trials_to_train.txt", [f"{n}.aedat" for n in train])
    write_trials(folder / "trials_to_test.txt", [f"{n}.aedat" for n in test])
    return folder


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return _write_release(tmp_path_factory.mktemp("gesture"))


def test_samples_follow_trials_and_csv_rows(release):
    train = DVSGesture(release.parent, "train")
    assert [(s.recording.stem, s.row, s.label) for s in train.samples] == [
        ("user01_natural", 0, 0),
        ("user01_natural", 1, 2),
        ("user01_natural", 2, 4),
        ("user01_natural", 3, 3),
        ("user01_natural", 4, 7),
        ("user01_natural", 5, 7),
        ("user02_led", 0, 10),
    ]
    assert len(DVSGesture(release, "test")) == 3


def test_items_are_start_inclusive_end_exclusive_cuts(release):
    ds = DVSGesture(release, "test")
    everything = read_aedat31(release / "user03_lab.aedat")
    for i, (start, end) in enumerate(
        [(50_000, 600_000), (1_800_000, 2_600_000), (3_000_000, 3_500_000)]
    ):
        events, label = ds[i]
        mask = (everything["t"] >= start) & (everything["t"] < end)
        assert np.array_equal(events, everything[mask])
        assert label == RECORDINGS["user03_lab"][i][0] - 1
    assert len(ds[2][0]) == 0  # a row past the end of the recording gives no events, no crash


def test_cut_boundaries_by_hand():
    t = np.array([5, 10, 10, 20, 30])
    events = np.zeros(5, dtype=[("t", "<i8")])
    events["t"] = t
    assert cut_recording(events, 10, 30)["t"].tolist() == [10, 10, 20]


def test_same_samples_as_spikingjelly(release, tmp_path):
    sj = pytest.importorskip("spikingjelly.datasets.dvs128_gesture")
    ours = DVSGesture(release, "train")
    for name in ("user01_natural",):  # spikingjelly cannot read single-row csvs
        out = tmp_path / name
        for label in range(11):
            (out / str(label)).mkdir(parents=True)
        sj._split_aedat_files_to_np(
            name, release / f"{name}.aedat", release / f"{name}_labels.csv", out
        )
        seen = {}
        for index, sample in enumerate(ours.samples):
            if sample.recording.stem != name:
                continue
            k = seen.setdefault(sample.label, 0)
            seen[sample.label] += 1
            theirs = np.load(out / str(sample.label) / f"{name}_{k}.npz")
            events = ours[index][0]
            for field in "txyp":
                assert np.array_equal(
                    events[field].astype(np.int64), theirs[field].astype(np.int64)
                )


def test_missing_files_error_or_skip(tmp_path):
    folder = _write_release(tmp_path)
    (folder / "user02_led.aedat").unlink()
    with pytest.raises(
        DatasetError,
        match="trials_to_train.txt names user02_led.aedat, but user02_led.aedat is absent",
    ):
        DVSGesture(tmp_path, "train")
    ds = DVSGesture(tmp_path, "train", on_missing="skip")
    assert len(ds) == 6 and ds.skipped[0][0] == "user02_led.aedat"
    (folder / "user01_natural_labels.csv").unlink()
    with pytest.raises(DatasetError, match="user01_natural_labels.csv is absent"):
        DVSGesture(tmp_path, "train")


def test_bad_layouts(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        DVSGesture(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="unrecognised DVS Gesture layout; looked for original"):
        DVSGesture(tmp_path)
    folder = _write_release(tmp_path, {"user01_lab": [(12, 1, 2)]}, ("user01_lab",), ())
    with pytest.raises(
        FormatError, match="user01_lab_labels.csv: line 2 has class 12, expected 1..11"
    ):
        DVSGesture(folder, "train")
    with pytest.raises(DatasetError, match="the test split has no samples"):
        DVSGesture(folder, "test")
