"""StaticImageDataset: CIFAR-10, CIFAR-100 and class-per-folder image trees, read from disk only.

Static images go through the same door as event frames: items are `(float32 [3, H, W], int)`
and the model (or `repeat_encode`) presents each image at every one of the T time steps.
Nothing is downloaded; a missing dataset raises `DatasetError` saying which files go where.
"""

from __future__ import annotations

import codecs
import logging
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..errors import DatasetError, check_choice
from .augment import image_transform

__all__ = ["StaticImageDataset", "IMAGE_EXTENSIONS", "CIFAR10_CLASSES"]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp")
CIFAR10_CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()

# The python-pickle releases: folder name, files per split, label key, meta file and its key.
_CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "archive": "cifar-10-python.tar.gz",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "labels": b"labels",
        "meta": ("batches.meta", b"label_names"),
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "archive": "cifar-100-python.tar.gz",
        "train": ["train"],
        "test": ["test"],
        "labels": b"fine_labels",
        "meta": ("meta", b"fine_label_names"),
    },
}

Kind = Literal["auto", "cifar10", "cifar100", "folder"]


def _numpy_global(name: str) -> Any:
    """numpy's own array reconstruction function ``name`` (numpy 1 and 2 alike)."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core import multiarray, numeric
    return getattr(multiarray if name == "_reconstruct" else numeric, name)


# The only globals a CIFAR python batch may name: numpy arrays and dtypes, rebuilt by numpy's
# own functions (under numpy 1 and numpy 2 module names), and ``_codecs.encode``, with which
# Python 3 writes bytes into protocol-2 pickles. Nothing else is ever imported.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that admits dicts, lists, str, bytes, numbers and numpy arrays only."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if module == "numpy":
            return getattr(np, name)
        if module == "_codecs":
            return codecs.encode
        return _numpy_global(name)


def _unpickle(path: Path) -> dict:
    """A CIFAR python batch, read with an unpickler that runs nothing from the file.

    The batches come from Python 2; encoding="bytes" keeps their keys as bytes. A file naming
    anything but numpy arrays and dtypes raises DatasetError (docs/data.md).
    """
    try:
        with open(path, "rb") as f:
            obj = _BatchUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DatasetError(
            f"{path}: not a CIFAR python batch (refused by the restricted unpickler: {e})"
        ) from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: holds a {type(obj).__name__}, expected a CIFAR batch dict")
    return obj


def _find_cifar(root: Path, kind: str) -> Path | None:
    folder = _CIFAR[kind]["folder"]
    if root.name == folder:
        return root
    if (root / folder).is_dir():
        return root / folder
    return None


def _missing_message(root: Path, kind: str) -> str:
    if kind in _CIFAR:
        spec = _CIFAR[kind]
        files = ", ".join(spec["train"] + spec["test"] + [spec["meta"][0]])
        return (
            f"{root}: no {kind.upper()} found; extract {spec['archive']} (python version) so that"
            f" {root / spec['folder']} holds {files}"
        )
    return (
        f"{root}: no image tree found; put one folder per class holding its images"
        f" ({', '.join(IMAGE_EXTENSIONS)}), optionally under train/ and test/"
    )


class StaticImageDataset(Dataset):
    """Images `(float32 [3, H, W], int label)` from CIFAR-10/100 pickles or a class-per-folder tree.

    Args:
        root: a `cifar-10-batches-py` / `cifar-100-python` folder or its parent, or an image
            tree `root/<class>/<image>`; a tree with `train/` and `test/` subfolders gives each
            split its own images, a tree without them serves both splits.
        split: "train" or "test".
        transform: called on the PIL image. None uses `image_transform(train=split == "train")`
            with the dataset's normalisation (CIFAR-10, CIFAR-100, ImageNet for trees): timm's
            transform as the official CIFAR-10 call (flip, rand-m7-n1-mstd0.5-inc1) in training,
            resize and normalisation in test (docs/data.md).
            Pass `torchvision.transforms.ToTensor()` for raw pixels in [0, 1].
        target_transform: called on the int label.
        kind: "auto" detects the layout; or force "cifar10", "cifar100" or "folder".
        size: image side used by the default transform.

    Usage (needs the files)::

        ds = StaticImageDataset("data/cifar-10-batches-py", split="test")
        image, label = ds[0]  # image: [3, 32, 32] float32, normalised
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: Literal["train", "test"] = "train",
        transform: Callable[[Image.Image], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        kind: Kind = "auto",
        size: int = 32,
    ) -> None:
        check_choice("split", split, ("train", "test"))
        check_choice("kind", kind, ("auto", "cifar10", "cifar100", "folder"))
        self.root = Path(root)
        self.split = split
        self.target_transform = target_transform
        self._data: np.ndarray | None = None  # [N, H, W, 3] uint8 for CIFAR
        self._files: list[Path] = []
        self.kind = self._load(kind)
        normalization = self.kind if self.kind in _CIFAR else "imagenet"
        self.transform = (
            transform
            if transform is not None
            else image_transform(train=split == "train", normalize=normalization, size=size)
        )

    def _load(self, kind: str) -> str:
        if not self.root.is_dir():
            hint = "; ".join(
                _missing_message(self.root, k) for k in ([kind] if kind != "auto" else _CIFAR)
            )
            raise DatasetError(f"{self.root}: no such folder. {hint}")
        kinds = [kind] if kind != "auto" else ["cifar10", "cifar100"]
        for k in kinds:
            if k in _CIFAR:
                folder = _find_cifar(self.root, k)
                if folder is not None:
                    self._load_cifar(folder, k)
                    return k
                if kind != "auto":
                    raise DatasetError(_missing_message(self.root, k))
        self._load_folder()
        return "folder"

    def _load_cifar(self, folder: Path, kind: str) -> None:
        spec = _CIFAR[kind]
        names = spec["train"] if self.split == "train" else spec["test"]
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise DatasetError(
                f"{folder}: missing {missing} for the {self.split} split of {kind.upper()}; "
                + _missing_message(folder.parent, kind)
            )
        data, labels = [], []
        for name in names:
            batch = _unpickle(folder / name)
            if b"data" not in batch or spec["labels"] not in batch:
                raise DatasetError(
                    f"{folder / name}: expected keys b'data' and {spec['labels']!r},"
                    f" got {sorted(batch)}"
                )
            pixels = np.asarray(batch[b"data"], dtype=np.uint8)
            if pixels.ndim != 2 or pixels.shape[1] != 3072:
                raise DatasetError(
                    f"{folder / name}: data has shape {pixels.shape}, expected [N, 3072] uint8"
                )
            data.append(pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # [N, 32, 32, 3]
            labels.extend(int(v) for v in batch[spec["labels"]])
        self._data = np.ascontiguousarray(np.concatenate(data))
        self.targets = np.asarray(labels, dtype=np.int64)
        if len(self.targets) != len(self._data):
            raise DatasetError(f"{folder}: {len(self.targets)} labels for {len(self._data)} images")
        meta_name, meta_key = spec["meta"]
        if (folder / meta_name).is_file():
            meta = _unpickle(folder / meta_name)
            self.classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta[meta_key]]
        elif kind == "cifar10":
            self.classes = list(CIFAR10_CLASSES)
        else:
            self.classes = [str(i) for i in range(100)]

    def _load_folder(self) -> None:
        tree = self.root / self.split
        if not tree.is_dir():
            other = self.root / ("test" if self.split == "train" else "train")
            if other.is_dir():
                raise DatasetError(
                    f"{self.root}: has {other.name}/ but no {self.split}/; put the {self.split}"
                    f" images in {tree}/<class>/"
                )
            tree = self.root
        class_dirs = sorted(p for p in tree.iterdir() if p.is_dir())
        if not class_dirs:
            raise DatasetError(_missing_message(tree, "folder"))
        self.classes = [p.name for p in class_dirs]
        targets = []
        for label, class_dir in enumerate(class_dirs):
            files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise DatasetError(
                    f"{class_dir}: class folder without images ({', '.join(IMAGE_EXTENSIONS)})"
                )
            self._files += files
            targets += [label] * len(files)
        self.targets = np.asarray(targets, dtype=np.int64)
        logger.debug("%s: %d images in %d classes", tree, len(self._files), len(self.classes))

    def class_counts(self) -> dict[str, int]:
        """Images per class in this split, in label order."""
        counts = np.bincount(self.targets, minlength=len(self.classes))
        return {name: int(c) for name, c in zip(self.classes, counts, strict=True)}

    def __len__(self) -> int:
        return len(self.targets)

    def image(self, index: int) -> Image.Image:
        """The untransformed RGB image at `index`."""
        if self._data is not None:
            return Image.fromarray(self._data[index])
        with Image.open(self._files[index]) as img:
            return img.convert("RGB")

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        image = self.transform(self.image(index))
        target: Any = int(self.targets[index])
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, kind={self.kind!r},"
            f" split={self.split!r}, length={len(self)}, classes={len(self.classes)},\n"
            f"    transform={self.transform!r})"
        )
