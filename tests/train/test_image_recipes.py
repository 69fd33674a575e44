"""The image recipes apply timm's transforms exactly as the official main.py configures them."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import create_transform

from eventvision.train import load_pipeline
from eventvision.train._data import build_datasets
from tests.helpers import REAL_DATA

IMAGES = REAL_DATA / "cifar10-images"
CIFAR10 = {"mean": (0.4914, 0.4822, 0.4465), "std": (0.2023, 0.1994, 0.2010)}
CIFAR100 = {
    "mean": tuple(n / 255.0 for n in (129.3, 124.1, 112.4)),
    "std": tuple(n / 255.0 for n in (68.2, 65.4, 70.4)),
}
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
SMALL = {"scale": (1.0, 1.0), "ratio": (1.0, 1.0), "color_jitter": 0.0}
LARGE = {"scale": (0.08, 1.0), "ratio": (3 / 4, 4 / 3), "color_jitter": 0.4}

# The official load_data() arguments, written out independently of the recipes.
OFFICIAL = {
    "cifar10-direct": (32, "rand-m7-n1-mstd0.5-inc1", SMALL, CIFAR10, 1.0),
    "cifar100-direct": (32, "rand-m7-n1-mstd0.5-inc1", SMALL, CIFAR100, 1.0),
    "transfer-cifar10": (128, "rand-m9-n1-mstd0.4-inc1", SMALL, CIFAR10, 1.0),
    "imagenet-ti": (224, "rand-m7-mstd0.5-inc1", LARGE, IMAGENET, 0.95),
}


def _official(name: str, train: bool):
    size, augment, crop, norm, crop_pct = OFFICIAL[name]
    return create_transform(
        input_size=size,
        is_training=train,
        hflip=0.5,
        vflip=0.0,
        auto_augment=augment,
        interpolation="bicubic",
        crop_pct=crop_pct,
        **crop,
        **norm,
    )


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    if not IMAGES.is_dir():
        pytest.skip(f"{IMAGES} not present")
    root = tmp_path_factory.mktemp("tree")
    for i, png in enumerate(sorted(IMAGES.glob("*.png"))[:8]):
        for split in ("train", "test"):
            folder = root / split / f"class{i % 2}"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(png, folder / png.name)
    return root


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_recipe_transform_equals_timm_on_real_images(name: str, tree: Path):
    pipeline = load_pipeline(name)
    pipeline = replace(pipeline, data=replace(pipeline.data, path=str(tree)))
    train_ds, test_ds, _ = build_datasets(pipeline)  # what `eventvision train` applies
    for split, ds, train in (("train", train_ds, True), ("test", test_ds, False)):
        want_tf = _official(name, train)
        diffs = []
        for i in range(len(ds)):
            _seed(100 + i)
            got, _ = ds[i]
            _seed(100 + i)
            want = want_tf(ds.image(i))
            assert got.shape == want.shape == (3, pipeline.data.size, pipeline.data.size)
            diffs.append(float((got - want).abs().max()))
        assert max(diffs) == 0.0, f"{name} {split}: max difference {max(diffs)}"


def test_randaugment_uses_timms_magnitude_scale(tree: Path):
    # rand-m7 in timm rotates by up to 7/10 * 30 = 21 degrees (torchvision's 31-step scale: 7).
    tf = load_pipeline("cifar10-direct")
    from eventvision.data import image_transform
    from eventvision.train._data import image_transform_kwargs

    rand = image_transform(True, **image_transform_kwargs(tf.data)).transforms[2]
    rotate = next(op for op in rand.ops if op.name == "Rotate")
    assert rotate.magnitude / 10 * 30 == pytest.approx(21.0)
    assert rand.num_layers == 1 and rotate.magnitude_std == 0.5


def test_cifar10_batch_matches_timm(tree: Path):
    """One seeded batch of the CIFAR-10 recipe: the figure quoted in docs/training.md."""
    from eventvision.data import image_transform
    from eventvision.train._data import image_transform_kwargs

    spec = load_pipeline("cifar10-direct").data
    ours, theirs = (
        image_transform(True, **image_transform_kwargs(spec)),
        _official("cifar10-direct", True),
    )
    images = [Image.open(p).convert("RGB") for p in sorted(IMAGES.glob("*.png"))]
    _seed(0)
    got = torch.stack([ours(im) for im in images])
    _seed(0)
    want = torch.stack([theirs(im) for im in images])
    assert got.shape == (len(images), 3, 32, 32)
    assert float((got - want).abs().max()) == 0.0
