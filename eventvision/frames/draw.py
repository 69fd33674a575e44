"""Pictures of event frames: OFF events blue, ON orange, time running left to right (Pillow).

One drawer for `eventvision show`, the quickstart's sample picture and the library: each sample
``[T, 2, h, w]`` becomes rows of at most eight tiles labelled ``t=k``, several samples are
stacked one above the other (docs/preprocess.md, "Looking at a cache").
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..events import OFF_RGB, ON_RGB

__all__ = ["frame_tiles", "frame_grid", "image_format", "save_image", "save_gif"]

_OFF = np.array(OFF_RGB, dtype=np.float32)
_ON = np.array(ON_RGB, dtype=np.float32)
_GRID_GREY, _GAP_GREY, _TEXT = (90, 90, 90), (60, 60, 60), (220, 220, 220)


def frame_tiles(frames: np.ndarray, min_side: int = 128) -> list[Any]:
    """One RGB image per time step of ``frames [T, 2, h, w]``, scaled up to ``min_side`` px.

    Brightness is relative to the sample's 99th percentile of non-zero counts.
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[1] != 2:
        raise ConfigError(f"expected frames [T, 2, h, w], got shape {frames.shape}")
    from PIL import Image

    nonzero = frames[frames > 0]
    top = float(np.percentile(nonzero, 99)) if len(nonzero) else 1.0
    level = np.clip(frames / top, 0.0, 1.0)  # [T, 2, h, w]
    rgb = level[:, 0, ..., None] * _OFF + level[:, 1, ..., None] * _ON  # [T, h, w, 3]
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    scale = max(1, math.ceil(min_side / max(frames.shape[-2:])))
    size = (rgb.shape[2] * scale, rgb.shape[1] * scale)
    return [Image.fromarray(img).resize(size, Image.NEAREST) for img in rgb]


def _sample_grid(tiles: list[Any], per_row: int, gap: int = 2) -> Any:
    """The tiles in rows of at most ``per_row``, each labelled with its time step."""
    from PIL import Image, ImageDraw

    cols = min(len(tiles), per_row)
    rows = math.ceil(len(tiles) / cols)
    w, h = tiles[0].size
    grid = Image.new("RGB", (cols * (w + gap) + gap, rows * (h + gap) + gap), _GRID_GREY)
    draw = ImageDraw.Draw(grid)
    for t, tile in enumerate(tiles):
        x, y = gap + (t % cols) * (w + gap), gap + (t // cols) * (h + gap)
        grid.paste(tile, (x, y))
        draw.text((x + 3, y + 2), f"t={t}", fill=_TEXT)
    return grid


def frame_grid(
    samples: Sequence[np.ndarray], titles: Sequence[str] | None = None, per_row: int = 8
) -> Any:
    """One image of ``samples`` (each ``[T, 2, h, w]``) stacked top to bottom, 6 px apart.

    ``titles`` (one per sample) are written in a strip above each sample's grid.
    """
    from PIL import Image, ImageDraw

    if not len(samples):
        raise ConfigError("frame_grid: no samples to draw")
    if titles is not None and len(titles) != len(samples):
        raise ConfigError(f"frame_grid: {len(titles)} titles for {len(samples)} samples")
    grids = [_sample_grid(frame_tiles(s), per_row) for s in samples]
    strip, gap = (14 if titles else 0), 6
    width = max(g.size[0] for g in grids)
    height = sum(g.size[1] + strip for g in grids) + gap * (len(grids) - 1)
    out = Image.new("RGB", (width, height), _GAP_GREY)
    draw, y = ImageDraw.Draw(out), 0
    for k, grid in enumerate(grids):
        if titles:
            draw.text((3, y + 1), str(titles[k]), fill=_TEXT)
        out.paste(grid, (0, y + strip))
        y += strip + grid.size[1] + gap
    return out


def image_format(path: str | os.PathLike) -> str:
    """The Pillow format ``path``'s extension names; ConfigError for a folder or unknown one."""
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; give an image file path")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"{path}: unknown image extension {path.suffix or '(none)'!r}; use .png or .gif"
        )
    return fmt


def _write_atomically(path: Path, save: Callable[[Any], None]) -> Path:
    """``save`` into a temporary file beside ``path``, then rename; missing folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            save(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_image(image: Any, path: str | os.PathLike) -> Path:
    """Write a Pillow image atomically in the format its extension names (.png, .gif, ...)."""
    path = Path(path)
    fmt = image_format(path)
    return _write_atomically(path, lambda f: image.save(f, format=fmt))


def save_gif(tiles: Sequence[Any], path: str | os.PathLike, frame_ms: int = 150) -> Path:
    """Write ``tiles`` (e.g. `frame_tiles`) as a looping animation, one tile per frame."""
    path = Path(path)
    fmt = image_format(path)
    first, rest = tiles[0], list(tiles[1:])
    return _write_atomically(
        path,
        lambda f: first.save(
            f, format=fmt, save_all=True, append_images=rest, duration=frame_ms, loop=0
        ),
    )
