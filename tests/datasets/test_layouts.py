"""CIFAR10-DVS and DVS Gesture in tonic's and spikingjelly's layouts, against those libraries."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_events

from eventvision.datasets import CIFAR10DVS, DVSGesture
from eventvision.datasets.layouts import write_spikingjelly_npz, write_tonic_gesture_npy
from eventvision.errors import DatasetError
from eventvision.events import DVS128
from eventvision.io import CIFAR10_DVS_INFO, DVS_GESTURE_INFO, write_aedat2, write_aedat4

tonic = pytest.importorskip("tonic")
PER_CLASS = 4


def _equal(ours: np.ndarray, theirs) -> bool:
    if isinstance(theirs, dict):  # spikingjelly's loader gives a dict of arrays
        return all(np.array_equal(ours[k], theirs[k]) for k in "txyp")
    return all(np.array_equal(ours[k], theirs[k]) for k in "txyp")


def _no_download(monkeypatch, cls) -> None:
    monkeypatch.setattr(cls, "_check_exists", lambda self: True)  # files are there: never fetch


@pytest.fixture(scope="module")
def cifar_roots(tmp_path_factory):
    """The same recordings in the original, tonic and spikingjelly layouts."""
    base = tmp_path_factory.mktemp("cifar")
    roots = {"original": base / "orig", "tonic": base / "tonic", "spikingjelly": base / "sj"}
    for c, name in enumerate(CIFAR10_DVS_INFO.classes):
        folders = [
            roots["original"] / name,
            roots["tonic"] / "CIFAR10DVS" / name,
            roots["spikingjelly"] / "events_np" / name,
        ]
        for folder in folders:
            folder.mkdir(parents=True)
        for i in range(PER_CLASS):
            events = random_events(30, 10 * c + i)
            stem = f"cifar10_{name}_{i}"
            write_aedat2(folders[0] / f"{stem}.aedat", events)
            write_aedat4(folders[1] / f"{stem}.aedat4", events, DVS128, compression="zstd")
            write_spikingjelly_npz(folders[2] / f"{stem}.npz", events, big_endian_t=True)
    return roots


def test_cifar_layouts_detected_and_split_alike(cifar_roots):
    for split in ("train", "test"):
        stems = {}
        for layout, root in cifar_roots.items():
            ds = CIFAR10DVS(root, split)
            assert ds.layout.name == layout
            stems[layout] = [(s.path.stem, s.label) for s in ds.samples]
        assert stems["original"] == stems["tonic"] == stems["spikingjelly"]


def test_cifar_tonic_layout_equals_tonic(cifar_roots, monkeypatch):
    _no_download(monkeypatch, tonic.datasets.CIFAR10DVS)
    root = cifar_roots["tonic"]
    theirs = tonic.datasets.CIFAR10DVS(str(root))
    index = {path: i for i, path in enumerate(theirs.data)}
    ours = CIFAR10DVS(root, "all", layout="tonic")
    assert len(ours) == len(theirs) == 10 * PER_CLASS
    for i in range(0, len(ours), 3):
        events, label = ours[i]
        their_events, their_label = theirs[index[str(ours.samples[i].path)]]
        assert label == their_label and _equal(events, their_events)


def test_cifar_spikingjelly_layout_equals_spikingjelly_loader(cifar_roots):
    from spikingjelly.datasets.base import _load_events  # the loader of its event datasets
    from torchvision.datasets import DatasetFolder

    folder = cifar_roots["spikingjelly"] / "events_np"
    theirs = DatasetFolder(str(folder), loader=_load_events, extensions=(".npz",))
    index = {path: i for i, (path, _) in enumerate(theirs.samples)}
    ours = CIFAR10DVS(cifar_roots["spikingjelly"], "all")
    assert len(ours) == len(theirs)
    original = CIFAR10DVS(cifar_roots["original"], "all")
    for i in range(len(ours)):
        events, label = ours[i]
        their_events, their_label = theirs[index[str(ours.samples[i].path)]]
        assert their_events["t"].dtype == np.dtype(">u4")  # as spikingjelly leaves CIFAR10-DVS
        assert label == their_label and _equal(events, their_events)
    # the fixture wrote raw events to every layout: only the original layout re-orients them
    assert not np.array_equal(ours[0][0], original[0][0])


@pytest.fixture(scope="module")
def gesture_roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("gesture")
    tonic_root, sj_root = base / "tonic", base / "sj"
    written = {}
    for split, users in (
        ("train", ("user01_fluorescent", "user02_lab")),
        ("test", ("user24_led",)),
    ):
        folder = tonic_root / "DVSGesture" / f"ibmGesture{split.title()}"
        for u, user in enumerate(users):
            (folder / user).mkdir(parents=True)
            for label in range(11):
                events = random_events(40, 100 * u + label + len(split))
                write_tonic_gesture_npy(folder / user / f"{label}.npy", events)
                sj = sj_root / "events_np" / split / str(label)
                sj.mkdir(parents=True, exist_ok=True)
                write_spikingjelly_npz(sj / f"{user}_0.npz", events)
                written[(split, user, label)] = events
    return {"tonic": tonic_root, "spikingjelly": sj_root, "events": written}


@pytest.mark.parametrize("split", ["train", "test"])
def test_gesture_tonic_layout_equals_tonic(gesture_roots, monkeypatch, split):
    _no_download(monkeypatch, tonic.datasets.DVSGesture)
    root = gesture_roots["tonic"]
    theirs = tonic.datasets.DVSGesture(str(root), train=split == "train")
    index = {path: i for i, path in enumerate(theirs.data)}
    ours = DVSGesture(root, split)
    assert ours.layout.name == "tonic" and len(ours) == len(theirs)
    for i in range(len(ours)):
        events, label = ours[i]
        their_events, their_label = theirs[index[str(ours.samples[i].recording)]]
        assert label == their_label == int(ours.samples[i].recording.stem)
        assert _equal(events, their_events)


def test_gesture_spikingjelly_layout_keeps_natural_labels(gesture_roots):
    from spikingjelly.datasets.base import _load_events
    from torchvision.datasets import DatasetFolder

    folder = gesture_roots["spikingjelly"] / "events_np" / "train"
    theirs = DatasetFolder(str(folder), loader=_load_events, extensions=(".npz",))
    index = {path: i for i, (path, _) in enumerate(theirs.samples)}
    ours = DVSGesture(gesture_roots["spikingjelly"], "train")
    assert ours.layout.name == "spikingjelly" and len(ours) == len(theirs) == 22
    assert [s.label for s in ours.samples] == sorted(s.label for s in ours.samples)
    for i in range(len(ours)):
        path = ours.samples[i].recording
        events, label = ours[i]
        their_events, their_label = theirs[index[str(path)]]
        assert label == int(path.parent.name) and _equal(events, their_events)
        user = path.stem.rsplit("_", 1)[0]
        assert np.array_equal(events, gesture_roots["events"][("train", user, label)])
    # spikingjelly's DatasetFolder sorts '0', '1', '10', '2', ...: folder 10 becomes class 2
    assert theirs.class_to_idx["10"] == 2 and theirs.class_to_idx["2"] == 3


def test_unrecognised_layout_is_one_line(tmp_path):
    (tmp_path / "something").mkdir()
    for make in (lambda: CIFAR10DVS(tmp_path), lambda: DVSGesture(tmp_path)):
        with pytest.raises(DatasetError, match="unrecognised .* layout; looked for original") as e:
            make()
        assert "\n" not in str(e.value) and "spikingjelly" in str(e.value)


def test_mixed_layouts_are_refused(cifar_roots, gesture_roots, tmp_path):
    sj = gesture_roots["spikingjelly"]
    (sj / "trials_to_train.txt").write_text("")
    try:
        with pytest.raises(DatasetError, match=r"mixed DVS Gesture layouts \(original in"):
            DVSGesture(sj)
        assert DVSGesture(sj, layout="spikingjelly").layout.name == "spikingjelly"
    finally:
        (sj / "trials_to_train.txt").unlink()
    folder = tmp_path / "airplane"
    folder.mkdir()
    for i, suffix in enumerate((".aedat", ".aedat", ".npz")):
        (folder / f"cifar10_airplane_{i}{suffix}").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"mixed formats in one folder \(2 \*.aedat, 1 \*.npz\)"):
        CIFAR10DVS(tmp_path, layout="spikingjelly")


def test_named_layout_must_be_there(cifar_roots):
    with pytest.raises(DatasetError, match="not a CIFAR10-DVS folder in the tonic layout"):
        CIFAR10DVS(cifar_roots["spikingjelly"], layout="tonic")
    with pytest.raises(ValueError, match="layout must be one of"):
        CIFAR10DVS(cifar_roots["spikingjelly"], layout="mine")
    assert DVS_GESTURE_INFO.classes[0] == "hand_clapping"
