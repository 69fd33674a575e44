"""Exporting a run's whole T-step forward pass to ONNX or a torch.export program (docs/predict.md).

The exported graph takes frames ``[B, T, C, H, W]`` float32, binned as the run's cache (the
JSON sidecar holds the binning options and the class names), and returns logits ``[B, classes]``
(the mean of the per-step logits, what `Predictor` ranks). What the eager model does in
custom code is swapped for plain torch ops first: the fused neurons' numba kernels and
autograd functions, spikingjelly's neurons and their backends, the spike-driven convolutions,
in-place batch norm, the reused buffers and the popcount attention (``cpu_kernels``). The
neurons start every forward pass from their reset potential inside the graph, so no state
outlives a call.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..errors import ConfigError
from .binning import Binning
from .predictor import load_run_model

__all__ = ["EXPORT_FORMATS", "PlainLIF", "exportable", "export_run", "sidecar_path"]

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx", "pt2")
INPUT_NAME, OUTPUT_NAME = "frames", "logits"


class PlainLIF(nn.Module):
    """A multi-step LIF / PLIF neuron in plain torch ops, reset at the start of every call.

    The same charge, fire and reset as the fused and spikingjelly neurons (docs/models.md):
    ``H = V + (X - (V - V_reset)) / tau`` (PLIF: ``* sigmoid(w)``), spike at ``H >= V_th``,
    hard reset to ``V_reset`` (soft, ``V = H - S * V_th``, when it is None). The time loop is
    unrolled when traced, so the graph holds no state.
    """

    def __init__(
        self,
        tau: float,
        w: torch.Tensor | None,
        decay_input: bool,
        v_threshold: float,
        v_reset: float | None,
    ) -> None:
        super().__init__()
        self.tau, self.decay_input = float(tau), bool(decay_input)
        self.v_threshold = float(v_threshold)
        self.v_reset = None if v_reset is None else float(v_reset)
        self.w = None if w is None else nn.Parameter(w.detach().clone(), requires_grad=False)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, ...]`` of the input currents ``[T, ...]``, from a fresh potential."""
        reset = 0.0 if self.v_reset is None else self.v_reset
        q = None if self.w is None else torch.sigmoid(self.w)
        v = torch.full_like(x_seq[0], reset)
        spikes = []
        for t in range(x_seq.shape[0]):
            d = x_seq[t] - (v - reset) if self.decay_input else -(v - reset)
            d = d / self.tau if q is None else d * q
            h = v + d if self.decay_input else v + d + x_seq[t]
            s = (h >= self.v_threshold).to(x_seq.dtype)
            v = h - s * self.v_threshold if self.v_reset is None else s * reset + (1.0 - s) * h
            spikes.append(s)
        return torch.stack(spikes)  # [T, ...]


def _plain_neuron(m: nn.Module) -> PlainLIF | None:
    """The plain twin of a fused or spikingjelly LIF / PLIF neuron (None: not a neuron)."""
    from spikingjelly.activation_based import neuron

    from ..models.neurons import FusedLIF, FusedPLIF

    if isinstance(m, FusedLIF):
        w = m.w if isinstance(m, FusedPLIF) else None
        return PlainLIF(m.tau, w, m.decay_input, m.v_threshold, m.v_reset)
    if isinstance(m, neuron.ParametricLIFNode):
        return PlainLIF(2.0, m.w, m.decay_input, m.v_threshold, m.v_reset)
    if isinstance(m, neuron.LIFNode):
        return PlainLIF(m.tau, None, m.decay_input, m.v_threshold, m.v_reset)
    return None


class _LogitsOf(nn.Module):
    """``[B, T, C, H, W]`` frames to ``[B, classes]``: the per-step logits averaged over T."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model(frames).mean(0)  # [T, B, classes] -> [B, classes]


def exportable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with only exportable ops, returning ``[B, classes]``."""
    from ..models.layers import BN, DSSA, MultiStepConv2d, SpikingMatmul

    plain = copy.deepcopy(model).eval()
    swapped = 0
    for parent in list(plain.modules()):
        for name, child in list(parent.named_children()):
            twin = _plain_neuron(child)
            if twin is not None:
                setattr(parent, name, twin)
                swapped += 1
    for m in plain.modules():
        if hasattr(m, "pool"):
            m.pool = None
        if isinstance(m, MultiStepConv2d):
            m.sparse, m.low_memory = False, False  # oneDNN's conv2d, not the spike-driven one
        elif isinstance(m, (BN, SpikingMatmul)):
            m.low_memory = False
            if isinstance(m, BN):
                m.inplace = False
            else:
                m.keep_float = False
        elif isinstance(m, DSSA):
            m.fold_scales, m.attention_backend = False, "float"  # the official products
    if hasattr(plain, "buffer_pool"):
        plain.buffer_pool = None
    logger.info("export: %d neurons in plain torch ops", swapped)
    return _LogitsOf(plain).eval()


def sidecar_path(out: str | os.PathLike) -> Path:
    """Where the JSON sidecar of an exported file goes: ``model.onnx`` -> ``model.onnx.json``."""
    out = Path(out)
    return out.with_name(out.name + ".json")


def export_run(
    run_or_checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    fmt: str = "onnx",
    *,
    binning: Binning | str | os.PathLike | None = None,
    batch_size: int = 2,
) -> dict[str, Any]:
    """Export a run's model to ``out`` (``onnx`` or ``pt2``) with its JSON sidecar; the sidecar.

    The batch dimension is dynamic; ``batch_size`` is the example the graph is traced with.
    Both files are written to temporary names and renamed when whole.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; valid: {list(EXPORT_FORMATS)}")
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"{out}: is a folder, expected the exported file's name")
    model, binning, checkpoint = load_run_model(run_or_checkpoint, binning)
    wrapper = exportable(model)
    example = torch.zeros(batch_size, *binning.input_shape())  # [B, T, C, H, W]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")  # torch.export wants its suffix
    try:
        with torch.no_grad():
            _export(wrapper, example, tmp, fmt)
        sidecar = _sidecar(binning, checkpoint, fmt, model)
        side_tmp = sidecar_path(tmp)
        side_tmp.write_text(json.dumps(sidecar, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, out)
        os.replace(side_tmp, sidecar_path(out))
    finally:
        tmp.unlink(missing_ok=True)
        sidecar_path(tmp).unlink(missing_ok=True)
    return sidecar


def _export(wrapper: nn.Module, example: torch.Tensor, path: Path, fmt: str) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = {INPUT_NAME: {0: batch}}
    if fmt == "pt2":
        program = torch.export.export(wrapper, (example,), dynamic_shapes=dynamic)
        torch.export.save(program, str(path))
        return
    kwargs = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME]}
    try:  # the TorchScript exporter: ten times faster here than the dynamo one, same graph
        with warnings.catch_warnings():  # its deprecation notice, not the user's concern
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                wrapper,
                (example,),
                str(path),
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                dynamo=False,
                **kwargs,
            )
    except (TypeError, RuntimeError) as e:  # a torch without it (or it failed): dynamo
        logger.info("TorchScript ONNX export unavailable (%s); using torch.export", e)
        torch.onnx.export(
            wrapper, (example,), str(path), dynamic_shapes=dynamic, dynamo=True, **kwargs
        )


def _sidecar(binning: Binning, checkpoint: Path, fmt: str, model: nn.Module) -> dict[str, Any]:
    t, c, h, w = binning.input_shape()
    return {
        "format": fmt,
        "input": {
            "name": INPUT_NAME,
            "shape": ["batch", t, c, h, w],
            "dtype": "float32",
            "layout": "[B, T, C, H, W]: T time bins; C = OFF, ON (and OFF+ON when 3) counts, "
            "binned and resized as `binning` says",
        },
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(binning.classes)]},
        "classes": list(binning.classes),
        "binning": binning.to_dict(),
        "model": type(model).__name__,
        "checkpoint": str(checkpoint),
        "eventvision_version": __version__,
    }
