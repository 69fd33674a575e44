"""Synthetic DVS128 Gesture: a person's upper body, two jointed arms, 11 arm motions.

Each recording (one user under one lighting) is a static picture of a head and torso over a
textured wall, with two arms (striped sleeves, hands) drawn on top and moved through
the 11 gestures one after the other, with rests between them, like the IBM recordings. Users
differ in build, position, speed and clothing contrast; lightings in contrast and noise.
The subject faces the camera, so the subject's right arm is on the left of the image.

Speed: about 4.5 s of CPU per recording at ``scale=1`` (~95 s of 1 ms frames, 2-4M events,
~0.6M events/s) on one core of the 2-core dev VM; ``scale=0.1`` takes a tenth of that.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..events import DVS128
from ..io import DVS_GESTURE_INFO, write_aedat31, write_labels_csv, write_trials
from ..io.labels import LABEL_DTYPE
from ._kernels import _arms_kernel
from .pixel import simulate_dvs

__all__ = ["LIGHTINGS", "make_dvs_gesture", "make_gesture_recording"]

LIGHTINGS = ("fluorescent", "fluorescent_led", "lab", "led", "natural")
DT_US = 1000
GESTURE_US = (5_000_000, 8_000_000)
GAP_US = (800_000, 3_000_000)
TEST_FRACTION = 0.2  # IBM: users 24..29 of 29 are the test set
_TAG = 0x6E57  # separates this generator's random streams from the CIFAR10-DVS generator's
_CHUNK_FRAMES = 128
# (contrast gain, background events per pixel per second) of each lighting
_LIGHTING = {
    "fluorescent": (1.0, 0.15),
    "fluorescent_led": (0.9, 0.15),
    "lab": (1.1, 0.1),
    "led": (0.85, 0.2),
    "natural": (1.2, 0.05),
}
# The class sequence of the real user01_natural_labels.csv: 3/5/4 out of order, 8 twice.
_QUIRKY_SEQUENCE = (1, 2, 3, 5, 4, 6, 7, 8, 8, 9, 10, 11)
_RIGHT, _LEFT = 0, 1  # arm index; side sign in the image: right arm -1 (image left), left +1
_SIDE = np.array([-1.0, 1.0])
_REST = np.array([0.12, 0.05])  # (upper arm, forearm) angles of a hanging arm
_RAMP_S = 0.4  # seconds to move from rest into a gesture and back
_RATE_RANGE_HZ = (100_000 / 5, 700_000 / 8)  # events per second of gesture
_TARGET_RATE_HZ = 42_000  # the geometric middle of that range
# Per-class pace evening out the classes' steady event rates near 40k/s (fitted on 18 recordings)
_CLASS_PACE = (1.25, 1.09, 1.16, 0.52, 0.5, 0.46, 0.54, 1.01, 0.57, 1.11, 0.58)


def make_dvs_gesture(
    root: str | os.PathLike, users: int, seed: int, *, scale: float = 1.0, dt_us: int = DT_US
) -> list[Path]:
    """Write a synthetic DVS128 Gesture under ``<root>/DvsGesture`` in the IBM layout.

    Each user gets one or two lightings, hence ``userNN_<lighting>.aedat`` (AEDAT 3.1),
    ``userNN_<lighting>_labels.csv`` and the ``trials_to_train.txt`` / ``trials_to_test.txt``
    lists; the last 20 % of users (at least one when ``users >= 2``) are the test set. A
    recording depends only on ``(seed, user, lighting)``.

    Args:
        scale: multiplies every gesture and rest duration (5 to 8 s per gesture at 1.0); 0.1
            makes tiny test data. The event rate (20k to 87.5k events per second of gesture,
            so 100k to 700k per gesture at 1.0) stays, so counts shrink with the durations.

    Returns:
        the written ``.aedat`` paths.
    """
    if users < 1:
        raise ValueError(f"users must be >= 1, got {users}")
    folder = Path(root) / "DvsGesture"
    folder.mkdir(parents=True, exist_ok=True)
    n_test = max(1, round(TEST_FRACTION * users)) if users >= 2 else 0
    trials: dict[bool, list[str]] = {False: [], True: []}
    paths = []
    for user in range(1, users + 1):
        for lighting in _user_lightings(user, seed):
            events, rows = make_gesture_recording(user, lighting, seed, scale=scale, dt_us=dt_us)
            stem = f"user{user:02d}_{lighting}"
            write_aedat31(folder / f"{stem}.aedat", events)
            write_labels_csv(folder / f"{stem}_labels.csv", rows)
            trials[user > users - n_test].append(f"{stem}.aedat")
            paths.append(folder / f"{stem}.aedat")
    write_trials(folder / "trials_to_train.txt", trials[False])
    write_trials(folder / "trials_to_test.txt", trials[True])
    return paths


def _user_lightings(user: int, seed: int) -> list[str]:
    """One or two lightings for a user, in name order."""
    rng = np.random.default_rng([seed, _TAG, user])
    chosen = rng.choice(len(LIGHTINGS), size=rng.integers(1, 3), replace=False)
    return [LIGHTINGS[i] for i in sorted(chosen)]


def make_gesture_recording(
    user: int, lighting: str, seed: int, *, scale: float = 1.0, dt_us: int = DT_US
) -> tuple[np.ndarray, np.ndarray]:
    """Events and label rows of one synthetic recording: all 11 gestures by one user.

    The first recording of user 1 repeats the class sequence of the real
    ``user01_natural_labels.csv`` (a class twice, rows out of class order); other recordings
    perform 1..11 in order, sometimes with two classes swapped or one repeated.

    Returns:
        ``(events, rows)``: EVENT_DTYPE events on a microsecond clock starting tens of seconds
        in, and ``LABEL_DTYPE`` rows ``(label 1..11, start, end)`` in time order, each inside
        the events' span.

    Example:
        >>> events, rows = make_gesture_recording(2, "lab", seed=0, scale=0.02)
        >>> sorted(set(rows["label"].tolist())) == list(range(1, 12))
        True
    """
    if lighting not in _LIGHTING:
        raise ValueError(f"unknown lighting {lighting!r}; known: {list(LIGHTINGS)}")
    if user < 1 or seed < 0 or scale <= 0 or dt_us <= 0:
        raise ValueError(
            f"need user >= 1, seed >= 0, scale > 0, dt_us > 0; got {user}, {seed}, {scale}, {dt_us}"
        )
    if GESTURE_US[0] * scale < 10 * dt_us:
        raise ValueError(
            f"scale {scale} makes gestures shorter than 10 frames of {dt_us} us; "
            f"use scale >= {10 * dt_us / GESTURE_US[0]}"
        )
    user_rng = np.random.default_rng([seed, _TAG, user])
    body = _user_body(user_rng)
    rng = np.random.default_rng([seed, _TAG, user, 1 + LIGHTINGS.index(lighting)])
    quirky = user == 1 and lighting == _user_lightings(user, seed)[0]
    sequence = _QUIRKY_SEQUENCE if quirky else _sequence(rng)

    spans = []
    t_us = int(rng.uniform(500_000, 1_500_000) * scale)
    for label in sequence:
        length_us = int(rng.uniform(*GESTURE_US) * scale)
        spans.append((label, t_us, t_us + length_us))
        t_us += length_us + int(rng.uniform(*GAP_US) * scale)
    motions = [_draw_motion(label, rng) for label, _, _ in spans]
    times_s = np.arange(t_us // dt_us + 1) * (dt_us * 1e-6)
    rest = _rest_angles(times_s, rng)
    contrast_gain, noise_rate_hz = _LIGHTING[lighting]
    static, arm_level, stripe_amplitude = _render_static(body, contrast_gain, rng)
    t0_us = int(rng.integers(20_000_000, 60_000_000))
    pixel_seed = rng.integers(0, 1 << 63)
    rows = np.array([(c, t0_us + s, t0_us + e) for c, s, e in spans], dtype=LABEL_DTYPE)

    # Real gestures of 5 to 8 s hold 100k to 700k events, so 20k to 87.5k events/s keeps any
    # length inside. Class paces even out the classes' rates; a gesture whose rate still falls
    # outside is redone once at a pace scaled towards a middle rate.
    paces = np.array([body["speed"] * _CLASS_PACE[label - 1] for label, _, _ in spans])
    seconds = (rows["end"] - rows["start"]) * 1e-6
    for _ in range(2):
        angles = _pose_track(rest, times_s, spans, motions, paces)
        events = simulate_dvs(
            _frames(static, _joints(angles, body), body, arm_level, stripe_amplitude),
            dt_us,
            np.random.default_rng(pixel_seed),
            t0_us=t0_us,
            noise_rate_hz=noise_rate_hz,
        )
        counts = np.diff(np.searchsorted(events["t"], np.c_[rows["start"], rows["end"]]))[:, 0]
        rates = counts / seconds
        outside = (rates < _RATE_RANGE_HZ[0]) | (rates > _RATE_RANGE_HZ[1])
        if not outside.any():
            break
        paces[outside] *= _TARGET_RATE_HZ / np.maximum(rates[outside], 1.0)
    return events, rows


def _pose_track(rest, times_s, spans, motions, paces) -> np.ndarray:
    """Arm angles ``[N, arm, (upper, fore)]`` of the whole recording: rest, then each gesture.

    A gesture blends in from the rest pose and back out over ``_RAMP_S`` seconds (at most a
    quarter of the gesture).
    """
    angles = rest.copy()
    dt_s = times_s[1] - times_s[0] if len(times_s) > 1 else 1.0
    for (label, start_us, end_us), motion, pace in zip(spans, motions, paces, strict=True):
        k0, k1 = int(np.ceil(start_us * 1e-6 / dt_s)), int(end_us * 1e-6 / dt_s) + 1
        tau = times_s[k0:k1] - start_us * 1e-6
        target = _gesture_angles(label, tau, pace, motion)
        ramp_s = min(_RAMP_S, (end_us - start_us) * 1e-6 / 4)
        ramp = np.clip(np.minimum(tau, (end_us - start_us) * 1e-6 - tau) / ramp_s, 0, 1)
        ramp = (3 - 2 * ramp) * ramp**2  # smoothstep
        delta = np.angle(np.exp(1j * (target - angles[k0:k1])))  # the shortest way round
        angles[k0:k1] += ramp[:, None, None] * delta
    return angles


def _sequence(rng: np.random.Generator) -> tuple[int, ...]:
    """Classes 1..11 in order, with two neighbours swapped or one class repeated at times."""
    sequence = list(range(1, DVS_GESTURE_INFO.num_classes + 1))
    if rng.uniform() < 0.3:
        i = int(rng.integers(0, len(sequence) - 1))
        sequence[i], sequence[i + 1] = sequence[i + 1], sequence[i]
    if rng.uniform() < 0.2:
        i = int(rng.integers(0, len(sequence)))
        sequence.insert(i, sequence[i])
    return tuple(sequence)


def _user_body(rng: np.random.Generator) -> dict:
    """A user's build, position and pace, in pixels and a speed factor."""
    size = rng.uniform(0.88, 1.08)
    return {
        "cx": 64 + rng.uniform(-8, 8),
        "shoulder_y": 50 + rng.uniform(-5, 5),
        "shoulder_half": 17 * size,
        "upper": 22 * size,
        "fore": 20 * size,
        "radii": np.array([5.0, 4.0, 5.0]) * size,
        "speed": rng.uniform(0.85, 1.2),
        "sleeve_period": rng.uniform(5, 9),
    }


def _rest_angles(times_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hanging arms with a slight sway: ``[N, arm, (upper, fore)]``."""
    phase = rng.uniform(0, 2 * np.pi, (2, 2))
    sway = 0.02 * np.sin(2 * np.pi * 0.3 * times_s[:, None, None] + phase)
    return _REST + sway


def _draw_motion(label: int, rng: np.random.Generator) -> dict:
    """The random parts of one performance of gesture ``label``: size, phase, pace jitter."""
    motion = {
        "pace": rng.uniform(0.9, 1.1),
        "size": rng.uniform(0.8, 1.2),
        "phase": rng.uniform(0, 2 * np.pi),
    }
    if label == 11:  # other gestures: each arm a random smooth motion
        motion["hz"] = rng.uniform(0.4, 1.8, (2, 2))
        motion["base"] = rng.uniform([0.2, -1.0], [2.2, 1.0], (2, 2))
        motion["swing"] = rng.uniform([0.2, 0.3], [0.7, 0.9], (2, 2))
        motion["shift"] = rng.uniform(0, 2 * np.pi, (2, 2))
    return motion


def _gesture_angles(label: int, tau: np.ndarray, pace: float, motion: dict) -> np.ndarray:
    """Arm angles ``[N, arm, (upper, fore)]`` of gesture ``label`` (1..11), ``tau`` s in.

    Angles are from straight down, positive outward for either arm: pi/2 is horizontal and
    away from the body, pi is straight up, negative angles point across the body.
    """
    pace = pace * motion["pace"]
    angles = np.broadcast_to(_REST, (len(tau), 2, 2)).copy()

    def wave(hz, amplitude, offset=0.0):
        turn = 2 * np.pi * hz * pace * tau + motion["phase"] + offset
        return motion["size"] * amplitude * np.sin(turn)

    if label == 1:  # hand clapping: forearms swing in to meet in front of the chest
        for arm in (_RIGHT, _LEFT):
            angles[:, arm] = np.c_[0.2 + wave(1.6, 0.05), -1.25 + wave(1.6, 0.4)]
    elif label in (2, 3):  # hand wave: forearm up, swaying from the elbow
        arm = _RIGHT if label == 2 else _LEFT
        angles[:, arm] = np.c_[2.3 + wave(2.0, 0.15), np.pi + wave(2.0, 0.8)]
    elif label in (4, 5, 6, 7):  # straight arm turning full circles, both senses per arm
        arm = _RIGHT if label in (4, 5) else _LEFT
        sense = 1.0 if label in (4, 7) else -1.0
        turn = _REST[0] + sense * 2 * np.pi * 0.8 * pace * tau
        angles[:, arm] = np.c_[turn, turn + 0.1]
    elif label == 8:  # arm roll: forearms circling around each other
        for arm, offset in ((_RIGHT, 0.0), (_LEFT, np.pi)):
            upper = 0.35 + wave(1.5, 0.12, offset)
            angles[:, arm] = np.c_[upper, -1.0 + wave(1.5, 0.35, offset + np.pi / 2)]
    elif label == 9:  # air drums: forearms beating down in turn
        for arm, offset in ((_RIGHT, 0.0), (_LEFT, np.pi)):
            angles[:, arm] = np.c_[0.3 + wave(2.2, 0.1, offset), -0.5 + wave(2.2, 0.5, offset)]
    elif label == 10:  # air guitar: left arm holds the neck, right hand strums
        angles[:, _LEFT] = np.c_[1.25 + wave(0.7, 0.05), 1.45 + wave(0.7, 0.08)]
        angles[:, _RIGHT] = np.c_[0.35 + wave(3.0, 0.03), -0.9 + wave(3.0, 0.45)]
    elif label == 11:  # other gestures: random smooth motion of both arms
        turn = 2 * np.pi * motion["hz"] * pace * tau[:, None, None] + motion["shift"]
        angles = motion["base"] + motion["swing"] * np.sin(turn)
        angles[:, :, 1] += angles[:, :, 0]  # the forearm angle is relative to the upper arm
    else:
        raise ValueError(f"gesture label must be in 1..11, got {label}")
    return angles


def _joints(angles: np.ndarray, body: dict) -> np.ndarray:
    """Shoulder, elbow and hand positions ``[N, arm, point, (x, y)]`` in pixels."""
    n = len(angles)
    joints = np.empty((n, 2, 3, 2))
    joints[:, :, 0, 0] = body["cx"] + _SIDE * body["shoulder_half"]
    joints[:, :, 0, 1] = body["shoulder_y"]
    for point, (length, which) in enumerate(((body["upper"], 0), (body["fore"], 1)), start=1):
        direction = np.stack(
            [_SIDE * np.sin(angles[:, :, which]), np.cos(angles[:, :, which])], axis=-1
        )
        joints[:, :, point] = joints[:, :, point - 1] + length * direction
    return joints


def _render_static(body: dict, contrast_gain: float, rng: np.random.Generator):
    """The motionless part of the scene (wall, head, torso) as log intensity, and arm looks."""
    height, width = DVS128.height, DVS128.width
    yy, xx = np.mgrid[0:height, 0:width] + 0.5  # [H, W] pixel centres
    wall = rng.uniform(-1.8, -0.8)
    picture = wall + 0.15 * np.sin(xx / rng.uniform(6, 15) + rng.uniform(0, 6))
    body_contrast = contrast_gain * rng.uniform(0.5, 1.0) * rng.choice([-1.0, 1.0])
    head_y = body["shoulder_y"] - 20 * body["upper"] / 22
    head = np.hypot(xx - body["cx"], yy - head_y) - 10 * body["upper"] / 22
    qx = np.abs(xx - body["cx"]) - body["shoulder_half"] + 4
    qy = np.abs(yy - (body["shoulder_y"] + 100)) - 100
    torso = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - 4
    cover = np.clip(0.5 - np.minimum(head, torso), 0, 1)
    picture = (1 - cover) * picture + cover * (wall + body_contrast)
    arm_contrast = contrast_gain * rng.uniform(1.0, 1.4) * -np.sign(body_contrast)
    stripe_amplitude = contrast_gain * rng.uniform(0.35, 0.55)
    return picture.astype(np.float32), wall + arm_contrast, stripe_amplitude


def _frames(static, joints, body, arm_level, stripe_amplitude):
    """The scene with moving arms as ``[n, H, W]`` float32 chunks, refilling one buffer."""
    buffer = np.empty((_CHUNK_FRAMES, *static.shape), np.float32)  # [n, H, W]
    for start in range(0, len(joints), _CHUNK_FRAMES):
        out = buffer[: min(_CHUNK_FRAMES, len(joints) - start)]
        _arms_kernel(
            static,
            np.ascontiguousarray(joints[start : start + len(out)]),
            body["radii"],
            arm_level,
            stripe_amplitude,
            body["sleeve_period"],
            out,
        )
        yield out
