"""Synthetic N-MNIST, N-Caltech101 and CIFAR10-DVS in tonic's and spikingjelly's layouts."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from eventvision.cli.main import main

from eventvision.datasets import CIFAR10DVS, NMNIST, NCaltech101, cifar10dvs_fix_orientation
from eventvision.io import NCALTECH101_INFO
from eventvision.synth import make_cifar10dvs, make_ncaltech101

SHORT_US = 20_000


def test_cifar10dvs_layouts_hold_the_same_recordings(tmp_path):
    per_layout = {}
    for layout in ("original", "tonic", "spikingjelly"):
        make_cifar10dvs(tmp_path / layout, 1, seed=5, duration_us=SHORT_US, layout=layout)
        ds = CIFAR10DVS(tmp_path / layout, "all")
        assert ds.layout.name == layout and len(ds) == 10
        per_layout[layout] = [ds[i] for i in (0, 9)]
    for (orig, label), (sj, sj_label), (tonic, tonic_label) in zip(
        per_layout["original"], per_layout["spikingjelly"], per_layout["tonic"], strict=True
    ):
        assert label == sj_label == tonic_label
        assert np.array_equal(orig, sj)  # spikingjelly's files hold the oriented events
        assert np.array_equal(orig, cifar10dvs_fix_orientation(tonic))  # tonic's the raw ones


def test_ncaltech101_release_is_read_back(tmp_path):
    paths = make_ncaltech101(tmp_path, 1, seed=2, duration_us=2_000)
    assert len(paths) == 101
    ds = NCaltech101(tmp_path, "all")
    assert len(ds) == 101 and ds.classes == NCALTECH101_INFO.classes
    events, label = ds[57]
    assert label == 57 and len(events) and events["x"].max() < 240 and events["y"].max() < 180


def test_synth_nmnist_command(tmp_path):
    result = CliRunner().invoke(
        main, ["synth", "nmnist", str(tmp_path), "--per-class", "1"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "wrote 20 N-MNIST files" in result.output
    train, test = NMNIST(tmp_path, "train"), NMNIST(tmp_path, "test")
    assert len(train) == len(test) == 10
    events, label = test[3]
    assert label == 3 and len(events) > 100 and events["t"][0] == 0
    assert not np.array_equal(events, train[3][0])
