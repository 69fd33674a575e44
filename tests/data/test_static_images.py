from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from eventvision.data import StaticImageDataset, image_transform, make_loader, repeat_encode
from eventvision.data.augment import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from eventvision.data.static import CIFAR10_CLASSES
from eventvision.errors import ConfigError, DatasetError

REAL_IMAGES = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "cifar10-images"


def _batch(n: int, seed: int, label_key: bytes, n_classes: int) -> dict:
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"fake batch",
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key: [int(v) for v in rng.integers(0, n_classes, n)],
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    if label_key == b"fine_labels":
        batch[b"coarse_labels"] = [v // 5 for v in batch[label_key]]
    return batch


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.fixture
def cifar10(tmp_path: Path) -> Path:
    """A fake `cifar-10-batches-py`: 5 train batches of 4 images, a test batch of 3, the meta."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        _dump(folder / f"data_batch_{i}", _batch(4, i, b"labels", 10))
    _dump(folder / "test_batch", _batch(3, 0, b"labels", 10))
    _dump(folder / "batches.meta", {b"label_names": [c.encode() for c in CIFAR10_CLASSES]})
    return folder


@pytest.fixture
def cifar100(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _dump(folder / "train", _batch(6, 1, b"fine_labels", 100))
    _dump(folder / "test", _batch(2, 2, b"fine_labels", 100))
    _dump(folder / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)]})
    return folder


@pytest.mark.parametrize("from_parent", [False, True])
def test_cifar10_pickles_decode_to_the_stored_pixels_and_labels(cifar10, from_parent):
    root = cifar10.parent if from_parent else cifar10
    ds = StaticImageDataset(root, "train", transform=transforms.PILToTensor())
    batches = [pickle.load(open(cifar10 / f"data_batch_{i}", "rb")) for i in range(1, 6)]
    data = np.concatenate([b[b"data"] for b in batches])
    labels = sum((b[b"labels"] for b in batches), [])
    assert ds.kind == "cifar10" and len(ds) == 20 and ds.classes == list(CIFAR10_CLASSES)
    for i in (0, 7, 19):
        image, label = ds[i]
        assert label == labels[i]
        # CIFAR rows are the R, G, B planes of 32 x 32, each row-major
        assert torch.equal(image, torch.from_numpy(data[i].reshape(3, 32, 32)))
    assert sum(ds.class_counts().values()) == 20
    assert list(ds.class_counts()) == list(CIFAR10_CLASSES)
    assert len(StaticImageDataset(root, "test")) == 3


def test_default_transforms_normalise_with_the_papers_constants(cifar10):
    test = StaticImageDataset(cifar10, "test")
    image, _ = test[1]
    raw = transforms.ToTensor()(test.image(1))
    mean, std = torch.tensor(CIFAR10_MEAN)[:, None, None], torch.tensor(CIFAR10_STD)[:, None, None]
    torch.testing.assert_close(image, (raw - mean) / std)
    train_image, _ = StaticImageDataset(cifar10, "train")[0]
    assert train_image.shape == (3, 32, 32) and train_image.dtype == torch.float32


def test_cifar100_uses_fine_labels_and_its_constants(cifar100):
    ds = StaticImageDataset(cifar100.parent, "train")
    stored = pickle.load(open(cifar100 / "train", "rb"))
    assert ds.kind == "cifar100" and len(ds) == 6 and ds.classes[:2] == ["c0", "c1"]
    assert ds.targets.tolist() == stored[b"fine_labels"]
    normalize = [t for t in ds.transform.transforms if isinstance(t, transforms.Normalize)][0]
    assert tuple(normalize.mean) == CIFAR100_MEAN and tuple(normalize.std) == CIFAR100_STD


def test_missing_datasets_say_which_files_go_where(tmp_path, cifar10):
    with pytest.raises(DatasetError, match="cifar-10-batches-py.*data_batch_1.*test_batch"):
        StaticImageDataset(tmp_path / "empty_root_that_does_not_exist", kind="cifar10")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DatasetError, match="cifar-100-python.*train, test, meta"):
        StaticImageDataset(tmp_path / "nothing", kind="cifar100")
    with pytest.raises(DatasetError, match="one folder per class"):
        StaticImageDataset(tmp_path / "nothing")
    (cifar10 / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="data_batch_3"):
        StaticImageDataset(cifar10, "train")
    assert len(StaticImageDataset(cifar10, "test")) == 3  # the test split is still complete
    with pytest.raises(ConfigError, match="split"):
        StaticImageDataset(cifar10, "val")
    with pytest.raises(ConfigError, match="kind"):
        StaticImageDataset(cifar10, kind="svhn")


def test_image_transform_is_timms_create_transform():
    train = image_transform(train=True)
    kinds = [type(t).__name__ for t in train.transforms]
    assert kinds == [
        "RandomResizedCropAndInterpolation",
        "RandomHorizontalFlip",
        "RandAugment",
        "MaybeToTensor",
        "Normalize",
    ]
    crop, rand = train.transforms[0], train.transforms[2]
    assert crop.scale == (1.0, 1.0) and crop.ratio == (1.0, 1.0)
    assert rand.num_layers == 1 and all(op.magnitude == 7 for op in rand.ops)
    assert all(op.magnitude_std == 0.5 for op in rand.ops)
    assert "Rotate" in [op.name for op in rand.ops]
    auto = image_transform(train=True, normalize="cifar100", augment="autoaugment")
    assert "AutoAugment" in [type(t).__name__ for t in auto.transforms]
    test = image_transform(train=False, size=64)
    assert [type(t).__name__ for t in test.transforms][:2] == ["Resize", "CenterCrop"]
    assert test(Image.new("RGB", (32, 32))).shape == (3, 64, 64)
    with pytest.raises(ConfigError, match="trivial"):
        image_transform(train=True, augment="trivial")
    with pytest.raises(ConfigError, match="timm refuses"):
        image_transform(train=True, augment="rand-m7-q3")
    with pytest.raises(ConfigError, match="normalisation"):
        image_transform(train=True, normalize="mnist")


@pytest.fixture
def real_tree(tmp_path: Path) -> Path:
    """The 20 real CIFAR-10 test images as a class-per-folder tree (labels from the file names)."""
    if not REAL_IMAGES.is_dir():
        pytest.skip(f"{REAL_IMAGES} is absent")
    root = tmp_path / "cifar10_tree"
    for png in sorted(REAL_IMAGES.glob("cifar10_*_*.png")):
        label = int(png.stem.split("_")[2])
        (root / CIFAR10_CLASSES[label]).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, root / CIFAR10_CLASSES[label] / png.name)
    return root


def test_real_cifar10_images_as_a_folder_tree(real_tree):
    ds = StaticImageDataset(real_tree, "test", transform=transforms.PILToTensor())
    assert ds.kind == "folder" and len(ds) == 20
    assert ds.classes == sorted(p.name for p in real_tree.iterdir())
    for i in range(len(ds)):
        image, label = ds[i]
        path = ds._files[i]
        assert ds.classes[label] == CIFAR10_CLASSES[int(path.stem.split("_")[2])]
        assert image.shape == (3, 32, 32)
        assert torch.equal(image, transforms.PILToTensor()(Image.open(path).convert("RGB")))
    assert ds.class_counts()["ship"] == sum(1 for p in REAL_IMAGES.glob("*_8.png"))


def test_real_images_through_a_loader_and_repetition_encoding(real_tree):
    loader = make_loader(StaticImageDataset(real_tree, "train"), 8, train=True, seed=0)
    batches = list(loader)
    assert len(batches) == 2  # 20 images, the last partial batch dropped
    images, labels = batches[0]
    assert images.shape == (8, 3, 32, 32) and labels.dtype == torch.int64
    frames = repeat_encode(images, 4)  # [B, T, C, H, W]
    assert frames.shape == (8, 4, 3, 32, 32)
    assert all(torch.equal(frames[:, t], images) for t in range(4))


def test_a_tree_with_train_and_test_folders(tmp_path):
    for split, n in (("train", 3), ("test", 1)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (40, 30), (i, 0, 0)).save(tmp_path / split / cls / f"{i}.png")
    train = StaticImageDataset(tmp_path, "train")
    assert len(train) == 6 and train.classes == ["cat", "dog"]
    assert train[0][0].shape == (3, 32, 32)  # resized by the default transform
    assert StaticImageDataset(tmp_path, "test").class_counts() == {"cat": 1, "dog": 1}
    shutil.rmtree(tmp_path / "test")
    with pytest.raises(DatasetError, match="no test/"):
        StaticImageDataset(tmp_path, "test")
