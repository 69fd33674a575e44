"""The synthetic data generator: pixel model numbers, layouts, determinism, class structure."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from eventvision.events import EVENT_DTYPE, check_events, make_events
from eventvision.io import (
    CIFAR10_DVS_INFO,
    read_aedat2,
    read_aedat31,
    read_labels_csv,
    read_trials,
)
from eventvision.synth import (
    LIGHTINGS,
    make_cifar10dvs,
    make_cifar10dvs_sample,
    make_dvs_gesture,
    make_gesture_recording,
    simulate_dvs,
)
from eventvision.synth.dvsgesture import _QUIRKY_SEQUENCE

GESTURE_SCALE = 0.08  # gestures of 0.4 to 0.64 s instead of 5 to 8 s


def _quiet(frames, dt_us=1000, threshold=0.25, **kw):
    """The pixel model with equal thresholds and no noise, for hand-computed cases."""
    frames = np.asarray(frames, np.float32)
    rng = np.random.default_rng(0)
    return simulate_dvs(
        frames, dt_us, rng, threshold=threshold, threshold_sigma=0, noise_rate_hz=0, **kw
    )


# --- pixel model -----------------------------------------------------------------------------


def test_ramp_crossing_five_thresholds_gives_five_on_events_at_the_crossings():
    ramp = (np.arange(11) / 8).reshape(11, 1, 1)  # log intensity 0 .. 1.25 in steps of 1/8
    events = _quiet(ramp)
    assert events["p"].tolist() == [1] * 5
    assert events["t"].tolist() == [2000, 4000, 6000, 8000, 10000]  # at 0.25, 0.5, .., 1.25


def test_falling_ramp_gives_off_events():
    events = _quiet(-(np.arange(11) / 8).reshape(11, 1, 1), t0_us=500)
    assert events["p"].tolist() == [0] * 5
    assert events["t"].tolist() == [2500, 4500, 6500, 8500, 10500]


def test_one_step_spanning_several_thresholds_interpolates_times():
    events = _quiet(np.array([0.0, 0.9]).reshape(2, 1, 1))
    # crossings at 0.25, 0.5, 0.75 of a 0 -> 0.9 line over 1000 us
    assert events["t"].tolist() == [278, 556, 833]
    assert events["p"].tolist() == [1, 1, 1]


def test_up_and_back_down_gives_on_then_off_events():
    events = _quiet(np.array([0.0, 0.5, 0.0]).reshape(3, 1, 1))
    assert events["p"].tolist() == [1, 1, 0, 0]
    assert events["t"].tolist() == [500, 1000, 1500, 2000]


def test_x_is_the_column_and_y_the_row():
    frames = np.zeros((2, 3, 5))
    frames[1, 1, 4] = 0.3
    events = _quiet(frames)
    assert events.dtype == EVENT_DTYPE
    assert (events["x"][0], events["y"][0], events["p"][0]) == (4, 1, 1)


def test_first_frame_sets_the_reference_and_emits_nothing():
    assert len(_quiet(np.full((1, 4, 4), 3.0))) == 0
    assert len(_quiet(np.full((5, 4, 4), 3.0))) == 0
    assert len(simulate_dvs(np.zeros((0, 4, 4), np.float32), 1000, np.random.default_rng(0))) == 0


def test_many_events_grow_the_buffers_exactly():
    frames = np.zeros((41, 64, 64), np.float32)
    frames[1::2] = 2.0  # every step crosses 8 thresholds of 0.25 at every pixel
    events = _quiet(frames)
    assert len(events) == 40 * 64 * 64 * 8  # more than the initial buffer
    on = events["p"] == 1
    assert on.sum() == 20 * 64 * 64 * 8
    assert np.all(np.diff(events["t"]) >= 0)


def test_chunked_input_gives_the_same_events():
    rng = np.random.default_rng(3)
    frames = np.cumsum(rng.normal(0, 0.1, (50, 8, 9)), axis=0).astype(np.float32)
    whole = simulate_dvs(frames, 1000, np.random.default_rng(1), t0_us=7)
    chunks = [frames[:1], frames[1:13], frames[13:13], frames[13:]]
    chunked = simulate_dvs(iter(chunks), 1000, np.random.default_rng(1), t0_us=7)
    assert len(whole) > 100
    assert np.array_equal(whole, chunked)


def test_thresholds_spread_across_pixels():
    frames = np.stack([np.zeros((64, 64)), np.full((64, 64), 2.0)])
    rng = np.random.default_rng(0)
    events = simulate_dvs(frames, 1000, rng, threshold=0.2, threshold_sigma=0.03, noise_rate_hz=0)
    per_pixel = np.bincount(events["y"].astype(int) * 64 + events["x"], minlength=64 * 64)
    assert 9 < per_pixel.mean() < 11  # about 2.0 / 0.2
    assert per_pixel.min() < 9 and per_pixel.max() > 11  # floor(2.0 / threshold) varies


def test_background_noise_is_poisson_uniform_and_in_span():
    frames = np.zeros((1001, 32, 32), np.float32)  # a static scene, 1 s
    events = simulate_dvs(frames, 1000, np.random.default_rng(0), t0_us=10**9, noise_rate_hz=2.0)
    expected = 2.0 * 32 * 32 * 1.0
    assert abs(len(events) - expected) < 5 * np.sqrt(expected)
    assert events["t"].min() >= 10**9 and events["t"].max() <= 10**9 + 10**6
    assert 0.45 < events["p"].mean() < 0.55
    check_events(events, CIFAR10_DVS_INFO.sensor)


def test_bad_arguments_raise_value_error():
    frames = np.zeros((3, 4, 4), np.float32)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="dt_us"):
        simulate_dvs(frames, 0, rng)
    with pytest.raises(ValueError, match="threshold"):
        simulate_dvs(frames, 1000, rng, threshold=0.0)
    with pytest.raises(ValueError, match="shape"):
        simulate_dvs(np.zeros((3, 4)), 1000, rng)
    with pytest.raises(ValueError, match="shape"):
        simulate_dvs([np.zeros((2, 4, 4)), np.zeros((2, 4, 5))], 1000, rng)


# --- CIFAR10-DVS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar10dvs")
    make_cifar10dvs(root, per_class=1, seed=0)
    return root


def _upright(raw: np.ndarray) -> np.ndarray:
    """spikingjelly's CIFAR10-DVS orientation, as the dataset class applies it."""
    return make_events(raw["t"], 127 - raw["y"], 127 - raw["x"], 1 - raw["p"])


def test_cifar_counts_and_durations(cifar_root):
    for name in CIFAR10_DVS_INFO.classes:
        events = read_aedat2(cifar_root / name / f"cifar10_{name}_0.aedat")
        check_events(events, CIFAR10_DVS_INFO.sensor)
        assert 100_000 <= len(events) <= 400_000, (name, len(events))
        span = events["t"][-1] - events["t"][0]
        assert 1_250_000 <= span <= 1_300_000, (name, span)
        assert set(np.unique(events["p"]).tolist()) == {0, 1}


def test_cifar_files_hold_the_upright_samples_in_raw_coordinates(cifar_root):
    raw = read_aedat2(cifar_root / "cat" / "cifar10_cat_0.aedat")
    assert np.array_equal(_upright(raw), make_cifar10dvs_sample(3, 0, seed=0))


def test_cifar_layout_same_bytes_and_smaller_run_is_a_prefix(tmp_path):
    short = {"seed": 2, "duration_us": 60_000}
    paths = make_cifar10dvs(tmp_path / "a", per_class=3, **short)
    files = sorted(p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*"))
    names = CIFAR10_DVS_INFO.classes
    expected = [*names, *(f"{n}/cifar10_{n}_{i}.aedat" for n in names for i in range(3))]
    assert files == sorted(expected)
    assert [p.relative_to(tmp_path / "a").as_posix() for p in paths] == expected[len(names) :]
    for path in make_cifar10dvs(tmp_path / "b", per_class=2, **short):
        assert path.read_bytes() == (tmp_path / "a" / path.relative_to(tmp_path / "b")).read_bytes()


def test_cifar_different_seeds_differ():
    a = make_cifar10dvs_sample(0, 0, seed=0, duration_us=100_000)
    b = make_cifar10dvs_sample(0, 0, seed=1, duration_us=100_000)
    c = make_cifar10dvs_sample(0, 1, seed=0, duration_us=100_000)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def _event_image(events: np.ndarray, cells: int = 16) -> np.ndarray:
    """Counts on a coarse grid, normalised: a trivial per-sample feature."""
    cell = 128 // cells
    image = np.bincount(
        (events["y"] // cell).astype(int) * cells + events["x"] // cell, minlength=cells * cells
    ).astype(float)
    return image / np.linalg.norm(image)


def test_cifar_classes_are_separable_by_nearest_centroid():
    n_train, n_test = 8, 3
    features = np.array(
        [
            [
                _event_image(make_cifar10dvs_sample(label, i, seed=5, duration_us=100_000))
                for i in range(n_train + n_test)
            ]
            for label in range(10)
        ]
    )  # [class, sample, feature]
    centroids = features[:, :n_train].mean(axis=1)
    test = features[:, n_train:].reshape(-1, features.shape[-1])
    truth = np.repeat(np.arange(10), n_test)
    predicted = np.argmin(((test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    accuracy = (predicted == truth).mean()
    assert accuracy >= 0.4, accuracy  # chance is 0.1; 0.53 measured


def test_cifar_bad_arguments_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="per_class"):
        make_cifar10dvs(tmp_path, per_class=-1, seed=0)
    with pytest.raises(ValueError, match="label"):
        make_cifar10dvs_sample(10, 0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        make_cifar10dvs_sample(0, 0, seed=-1)


# --- DVS Gesture -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gesture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("gesture")
    paths = make_dvs_gesture(root, users=2, seed=0, scale=GESTURE_SCALE)
    return root / "DvsGesture", paths


def test_gesture_layout_and_trials(gesture_root):
    folder, paths = gesture_root
    recordings = sorted(p.name for p in folder.glob("*.aedat"))
    assert recordings == sorted(p.name for p in paths)
    assert len(recordings) >= 2
    for name in recordings:
        user, lighting = name[: -len(".aedat")].split("_", 1)
        assert user in {"user01", "user02"} and lighting in LIGHTINGS
        assert (folder / name.replace(".aedat", "_labels.csv")).is_file()
    train = read_trials(folder / "trials_to_train.txt")
    test = read_trials(folder / "trials_to_test.txt")
    assert sorted(train + test) == recordings
    assert train and all(name.startswith("user01_") for name in train)
    assert test and all(name.startswith("user02_") for name in test)


def test_gesture_recordings_events_and_labels(gesture_root):
    _, paths = gesture_root
    scale = GESTURE_SCALE
    for path in paths:
        events = read_aedat31(path)
        check_events(events, CIFAR10_DVS_INFO.sensor)
        rows = read_labels_csv(path.with_name(path.stem + "_labels.csv"))
        assert sorted(set(rows["label"].tolist())) == list(range(1, 12))
        assert events["t"][0] >= 20_000_000  # the clock starts tens of seconds in
        assert events["t"][0] <= rows["start"].min() and rows["end"].max() <= events["t"][-1]
        assert np.all(rows["start"][1:] >= rows["end"][:-1])
        lengths = rows["end"] - rows["start"]
        assert np.all((lengths >= 5e6 * scale - 1) & (lengths <= 8e6 * scale)), lengths
        counts = np.diff(np.searchsorted(events["t"], np.c_[rows["start"], rows["end"]]))[:, 0]
        rates = counts / (lengths * 1e-6)
        # 20k to 87.5k events/s is 100k to 700k per 5 to 8 s gesture; in gestures this short
        # the moves from rest into the gesture and back add up to ~3x the rate
        assert np.all((rates >= 20_000) & (rates <= 3 * 87_500)), rates


def test_gesture_quirks_of_the_real_csv(gesture_root):
    folder, paths = gesture_root
    first = min(p for p in paths if p.name.startswith("user01_"))
    labels = read_labels_csv(first.with_name(first.stem + "_labels.csv"))["label"].tolist()
    assert labels == list(_QUIRKY_SEQUENCE)
    assert labels.count(8) == 2 and labels != sorted(labels)


def test_gesture_same_seed_same_bytes_whatever_the_user_count(gesture_root, tmp_path):
    folder, _ = gesture_root
    paths = make_dvs_gesture(tmp_path, users=1, seed=0, scale=GESTURE_SCALE)
    for path in paths:
        assert path.read_bytes() == (folder / path.name).read_bytes()
        csv = path.with_name(path.stem + "_labels.csv")
        assert csv.read_bytes() == (folder / csv.name).read_bytes()
    assert read_trials(tmp_path / "DvsGesture" / "trials_to_test.txt") == []


def test_gesture_different_seeds_differ():
    a, rows_a = make_gesture_recording(2, "lab", seed=0, scale=0.02)
    b, rows_b = make_gesture_recording(2, "lab", seed=1, scale=0.02)
    assert not np.array_equal(a, b) and not np.array_equal(rows_a, rows_b)


def test_gesture_bad_arguments_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="users"):
        make_dvs_gesture(tmp_path, users=0, seed=0)
    with pytest.raises(ValueError, match="lighting"):
        make_gesture_recording(1, "candle", seed=0)
    with pytest.raises(ValueError, match="scale"):
        make_gesture_recording(1, "lab", seed=0, scale=0)
    with pytest.raises(ValueError, match="10 frames"):
        make_gesture_recording(1, "lab", seed=0, scale=0.001)


def test_synth_does_not_import_torch():
    code = "import eventvision.synth, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _reference_dvs(frames, dt_us, thresholds):
    """The pixel model written plainly, one pixel and one crossing at a time."""
    events = []
    n_frames, height, width = frames.shape
    for y in range(height):
        for x in range(width):
            reference = float(frames[0, y, x])
            for k in range(1, n_frames):
                a, b = float(frames[k - 1, y, x]), float(frames[k, y, x])
                for polarity, sign in ((1, 1.0), (0, -1.0)):
                    step = thresholds[1 - polarity, y, x]
                    while sign * (b - reference) >= step:
                        reference += sign * step
                        fraction = (reference - a) / (b - a)
                        events.append((round((k - 1 + fraction) * dt_us), x, y, polarity))
    events.sort(key=lambda e: e[0])
    return events


def test_kernel_matches_the_plain_reference_on_random_frames():
    rng = np.random.default_rng(11)
    frames = np.cumsum(rng.normal(0, 0.15, (40, 3, 4)), axis=0).astype(np.float32)
    thresholds = np.maximum(np.random.default_rng(2).normal(0.2, 0.03, (2, 3, 4)), 0.01)
    events = simulate_dvs(frames, 1000, np.random.default_rng(2), noise_rate_hz=0)
    expected = _reference_dvs(frames, 1000, thresholds)
    assert len(events) == len(expected) > 50
    # same multiset of events; ties in time may come in another order
    assert sorted(events.tolist()) == sorted(expected)
