"""`preprocess` of every layout the datasets read, and `preprocess folder --orientation`.

The spikingjelly trees are written by spikingjelly's own conversion of the original release
(``create_raw_from_extracted``); tonic's by our writers, checked against tonic's readers in
tests/datasets/test_layouts.py (tonic ships no converter from the release).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from eventvision.cli.main import main
from PIL import Image

from eventvision.cache import open_cache, read_sample
from eventvision.datasets import DVSGesture, cut_recording, orient_events
from eventvision.datasets.layouts import write_spikingjelly_npz, write_tonic_gesture_npy
from eventvision.events import DVS128, Sensor
from eventvision.io import read_aedat2, write_aedat4, write_aedat31, write_labels_csv, write_trials

_spec = importlib.util.spec_from_file_location(
    "raw_release", Path(__file__).parents[1] / "cache" / "raw_release.py"
)
raw_release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw_release)

ARGS = ["--time-steps", "4", "--size", "32"]
REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"


def invoke(*args, code: int = 0) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def _samples(cache: Path) -> dict[str, list]:
    """Per split, ``(file stem, label, frames bytes)`` of every sample, sorted."""
    with h5py.File(cache, "r") as f:
        frames, labels, split = f["frames"][:], f["labels"][:], f["split"][:]
        stems = [Path(s).stem for s in f["source"].asstr()[:]]
    return {
        name: sorted(
            (stems[i], int(labels[i]), frames[i].tobytes()) for i in np.flatnonzero(split == code)
        )
        for name, code in (("train", 0), ("test", 1))
    }


@pytest.fixture(scope="module")
def cifar_roots(tmp_path_factory) -> dict[str, Path]:
    """One release in the original layout, spikingjelly's conversion of it, and tonic's."""
    from spikingjelly.datasets.cifar10_dvs import CIFAR10DVS as SJCIFAR10DVS

    base = tmp_path_factory.mktemp("cifar")
    original = raw_release.make_cifar_release(base / "orig", per_class=3)
    (base / "sj" / "events_np").mkdir(parents=True)
    SJCIFAR10DVS.create_raw_from_extracted(original, base / "sj" / "events_np")
    for path in original.glob("*/*.aedat"):  # tonic's AEDAT 4: the raw addresses, as DV wrote
        out = base / "tonic" / "CIFAR10DVS" / path.parent.name / (path.stem + ".aedat4")
        out.parent.mkdir(parents=True, exist_ok=True)
        write_aedat4(out, read_aedat2(path), DVS128, compression="zstd")
    return {"original": original, "tonic": base / "tonic", "spikingjelly": base / "sj"}


def test_cifar10dvs_every_layout_gives_the_original_cache(cifar_roots, tmp_path):
    caches = {}
    for layout, root in cifar_roots.items():
        caches[layout] = tmp_path / f"{layout}.h5"
        out = invoke("preprocess", "cifar10-dvs", root, caches[layout], *ARGS)  # --layout auto
        assert "20 train + 10 test samples" in out, out
        info = invoke("info", caches[layout])
        assert (f"layout: {layout}" in info) == (layout != "original"), info
    want = _samples(caches["original"])
    for layout in ("tonic", "spikingjelly"):  # same files, labels, split and frames
        assert _samples(caches[layout]) == want, layout
    # the stored events are oriented alike too: tonic's raw events get the release's fix
    for layout in ("original", "tonic"):
        invoke("preprocess", "cifar10-dvs", cifar_roots[layout], tmp_path / f"e{layout}.h5",
               "--store", "events")  # fmt: skip
    a, b = (open_cache(tmp_path / f"e{layout}.h5") for layout in ("original", "tonic"))
    for row in (0, 7, 29):
        assert (
            read_sample(a, row).source == read_sample(b, row).source.replace("CIFAR10DVS/", "")[:-1]
        )
        assert np.array_equal(read_sample(a, row).data, read_sample(b, row).data)


def test_a_named_layout_is_checked_and_foreign_flags_refused(cifar_roots, tmp_path):
    out = invoke("preprocess", "cifar10-dvs", cifar_roots["spikingjelly"], tmp_path / "c.h5",
                 "--layout", "tonic", code=1)  # fmt: skip
    assert "not a CIFAR10-DVS folder in the tonic layout" in out and len(out.splitlines()) == 1
    out = invoke("preprocess", "cifar10-dvs", cifar_roots["tonic"], tmp_path / "c.h5",
                 "--orientation", "jaer", code=1)  # fmt: skip
    assert "['orientation'] do not apply to cifar10-dvs" in out
    out = invoke("preprocess", "nmnist", cifar_roots["tonic"], tmp_path / "c.h5",
                 "--layout", "tonic", code=1)  # fmt: skip
    assert "['layout'] do not apply to nmnist" in out and not (tmp_path / "c.h5").exists()


def _gesture_release(root: Path) -> Path:
    """Three recordings (two train, one test), each label once per recording."""
    folder = root / "DvsGesture"
    folder.mkdir(parents=True)
    names = ["user01_lab.aedat", "user02_led.aedat", "user03_natural.aedat"]
    for u, name in enumerate(names):
        write_aedat31(folder / name, raw_release.random_raw_events(4000, seed=u))
        classes = [(5 * u + 3 * r) % 11 + 1 for r in range(4)]
        rows = [(c, r * 300_000, (r + 1) * 300_000 - 1000) for r, c in enumerate(classes)]
        write_labels_csv(folder / (name[: -len(".aedat")] + "_labels.csv"), rows)
    write_trials(folder / "trials_to_train.txt", names[:2])
    write_trials(folder / "trials_to_test.txt", names[2:])
    return root


@pytest.fixture(scope="module")
def gesture_roots(tmp_path_factory) -> dict[str, Path]:
    from spikingjelly.datasets.dvs128_gesture import DVS128Gesture

    base = tmp_path_factory.mktemp("gesture")
    original = _gesture_release(base / "orig")
    (base / "sj" / "events_np").mkdir(parents=True)
    DVS128Gesture.create_raw_from_extracted(original, base / "sj" / "events_np")
    for split, folder in (("train", "ibmGestureTrain"), ("test", "ibmGestureTest")):
        ds = DVSGesture(original, split)
        for recording, indices in ds.iter_recordings():
            events = ds.recording_events(recording)
            user = base / "tonic" / "DVSGesture" / folder / recording.stem
            user.mkdir(parents=True)
            for i in indices:
                s = ds.samples[i]
                cut = cut_recording(events, s.start_us, s.end_us)
                write_tonic_gesture_npy(user / f"{s.label}.npy", cut)
    return {"original": original, "tonic": base / "tonic", "spikingjelly": base / "sj"}


def test_dvs_gesture_every_layout_gives_the_original_samples(gesture_roots, tmp_path):
    def content(cache: Path) -> dict[str, list]:  # file names differ by layout: drop them
        return {k: sorted(v[1:] for v in rows) for k, rows in _samples(cache).items()}

    caches = {}
    for layout, root in gesture_roots.items():
        caches[layout] = tmp_path / f"{layout}.h5"
        out = invoke("preprocess", "dvs-gesture", root, caches[layout], *ARGS)
        assert "8 train + 4 test samples" in out, out
    want = content(caches["original"])
    for layout in ("tonic", "spikingjelly"):
        assert content(caches[layout]) == want, layout
        assert f"layout: {layout}" in invoke("info", caches[layout])


# --- folder --orientation --------------------------------------------------------------------

SENSOR = Sensor(40, 30)


def _folder_tree(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            events = raw_release.random_raw_events(300, seed=len(split) + ord(c))
            events["x"] = rng.integers(0, SENSOR.width, len(events))
            events["y"] = rng.integers(0, SENSOR.height, len(events))
            write_spikingjelly_npz(root / split / c / "0.npz", events)
    return root


@pytest.mark.parametrize(
    "orientation, flip_axes",
    [("raw", ()), ("flip-x", (-1,)), ("flip-y", (-2,)), ("rot180", (-2, -1)), ("jaer", (-2, -1))],
)
def test_folder_orientation_flips_frames_and_events(tmp_path, orientation, flip_axes):
    root = _folder_tree(tmp_path / "raw")
    args = ["--sensor-size", "30x40", "--time-steps", "3", "--size", "30x40"]  # no resize
    invoke("preprocess", "folder", root, tmp_path / "raw.h5", *args)
    invoke("preprocess", "folder", root, tmp_path / "o.h5", *args, "--orientation", orientation)
    with h5py.File(tmp_path / "raw.h5") as a, h5py.File(tmp_path / "o.h5") as b:
        assert np.array_equal(np.flip(a["frames"][:], axis=flip_axes), b["frames"][:])
    info = invoke("info", tmp_path / "o.h5")
    assert (f"orientation: {orientation}" in info) == (orientation != "raw")
    assert "sensor_size: 30x40 (HxW)" in info and "sensor: 30x40 (HxW), 2 polarities" in info
    invoke("preprocess", "folder", root, tmp_path / "e.h5", "--sensor-size", "30x40",
           "--store", "events", "--orientation", orientation)  # fmt: skip
    sample = read_sample(open_cache(tmp_path / "e.h5"), 0)
    first, raw = sample.data, np.load(root / sample.source)
    x, y = raw["x"].astype(int), raw["y"].astype(int)  # numpy twin of the flips
    if -1 in flip_axes:
        x = SENSOR.width - 1 - x
    if -2 in flip_axes:
        y = SENSOR.height - 1 - y
    assert np.array_equal(first["x"], x) and np.array_equal(first["y"], y)
    assert np.array_equal(first["p"], raw["p"])


def test_orient_events_matches_jaer_drawing():
    events = raw_release.random_raw_events(50, seed=3)
    turned = orient_events(events, "jaer", DVS128)
    assert np.array_equal(turned["x"], 127 - events["x"].astype(int))  # jAER draws 127 - raw x
    assert np.array_equal(turned["y"], 127 - events["y"].astype(int))  # and counts y upwards
    assert np.array_equal(turned["t"], events["t"]) and np.array_equal(turned["p"], events["p"])


def _head_rows(tile_rgb: np.ndarray, blocks: int = 8) -> int:
    """Block row (0 = top, of ``blocks``) of the densest block of a drawn frame: the head."""
    level = tile_rgb.astype(np.float64).sum(-1)  # [h, w]
    h, w = level.shape
    per = level[: h // blocks * blocks, : w // blocks * blocks]
    sums = per.reshape(blocks, h // blocks, blocks, w // blocks).sum((1, 3))
    return int(np.unravel_index(sums.argmax(), sums.shape)[0])


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real (real recordings) absent")
def test_real_jaer_walk_comes_out_upright(tmp_path):
    """A person walking away (ouyang_alex_walking_again.aedat): the head, the densest part of
    the picture at every time step, is drawn at the top with `jaer` and at the bottom raw."""
    files = REAL / "dvs128-aedat2-misc"
    root = tmp_path / "walk"
    for split, name in (("train", "ouyang_alex_walking_again"), ("test", "ouyang_neal_walking")):
        (root / split / "person").mkdir(parents=True)
        shutil.copy(files / f"{name}.aedat", root / split / "person" / f"{name}.aedat")
    heads = {}
    for orientation in ("jaer", "raw"):
        cache = tmp_path / f"{orientation}.h5"
        invoke("preprocess", "folder", root, cache, "--time-steps", "8", "--size", "128",
               "--orientation", orientation)  # fmt: skip
        gif = tmp_path / f"{orientation}.gif"
        out = invoke("show", cache, "--index", "0", "--out", tmp_path / "s.png", "--gif", gif)
        assert "ouyang_alex_walking_again" in out
        drawn = Image.open(gif)
        heads[orientation] = []
        for t in range(drawn.n_frames):
            drawn.seek(t)
            heads[orientation].append(_head_rows(np.asarray(drawn.convert("RGB"))))
    assert len(heads["jaer"]) == 8
    assert all(row <= 2 for row in heads["jaer"]), heads  # top 3/8 of the picture
    assert all(row >= 5 for row in heads["raw"]), heads  # upside down without the step
