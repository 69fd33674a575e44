"""Predicting on real DVS128 recordings: our paths against the official model's forward.

``spikingresformer_dvsg`` at 64 px and T = 16, 0.5 s windows of the real jAER DVS128
recordings in ``../shared/data/real/dvs128-aedat2-misc`` (PROVENANCE.md there). No trained
DVS Gesture weights exist here, so the model is initialised, its firing-rate buffers and batch
norm statistics warmed by train-mode forward passes on real windows, and the official model is
given the same state dict (equal keys), so both compute the same network.

Rows:
- ``predict (end to end)``: `Predictor.predict_file` over the recordings: read, cut, bin,
  resize, forward; windows/s and the real-time factor (recording time / wall time), after one
  untimed window (numba's compiled kernels load on their first call, once per process);
- ``ours forward`` (``cpu_kernels``), ``ours popcount`` (DSSA's spike-by-spike product as
  AND + popcount), ``official forward`` and ``onnxruntime`` (the exported file): the forward
  pass alone on the same real windows, taking turns so load hits all alike.

Usage:
    python benchmarks/bench_predict.py [--windows 24] [--threads 2] [--skip-official]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import interleaved_medians, print_table
from official import OFFICIAL_DIR, import_official
from spikingjelly.activation_based import functional

from eventvision.events import DVS128
from eventvision.io import read_events
from eventvision.io.datasets import DVS_GESTURE_INFO
from eventvision.predict import Binning, Predictor, Windowing, iter_windows
from eventvision.predict.export import export_run
from eventvision.train import load_pipeline
from eventvision.train.checkpoint import save_checkpoint
from eventvision.train.config import pipeline_dict
from eventvision.train.model_setup import build_model

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "dvs128-aedat2-misc"
WINDOW_US = 500_000


def _real_windows(binning: Binning, n: int) -> np.ndarray:
    """``[n, T, C, h, w]`` frames of the first ``n`` non-empty 0.5 s windows, files in turn."""
    to_frames = binning.to_frames(DVS128)
    frames = []
    for path in sorted(REAL.glob("*.aedat")):
        events, _ = read_events(path)
        for w in iter_windows([events], Windowing(window_us=WINDOW_US)):
            if len(w.events):
                frames.append(to_frames(w.events))
            if len(frames) == n:
                return np.stack(frames)
    return np.stack(frames)


def _make_run(folder: Path, binning: Binning, warm: np.ndarray) -> torch.nn.Module:
    """A run folder with the warmed model; returns the model (eval mode)."""
    pipeline = load_pipeline("dvsgesture-direct", {"data.path": ""})
    model = build_model(pipeline, len(binning.classes))
    model.train()
    with torch.no_grad():
        for batch in np.array_split(warm, max(1, len(warm) // 8)):
            model(torch.from_numpy(batch))
            functional.reset_net(model)
    model.eval()
    payload = {"model": model.state_dict(), "pipeline": pipeline_dict(pipeline), "epoch": 1}
    save_checkpoint(payload, folder / "best.pt")
    return model


def _forward(model: torch.nn.Module, x: torch.Tensor):
    def run():
        with torch.no_grad():
            model(x)
        functional.reset_net(model)

    return run


def _row(rows: list[list[str]], name: str, windows_per_s: float, realtime: float) -> None:
    """Add a row and say it at once on stderr (a loaded machine makes the whole run long)."""
    rows.append([name, f"{windows_per_s:.2f}", f"{realtime:.2f}"])
    print(" | ".join(rows[-1]), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, default=8, help="windows for the end-to-end rows")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-official", action="store_true")
    p.add_argument("--skip-end-to-end", action="store_true", help="only the forward rows")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    binning = Binning("dvs-gesture", DVS128, DVS_GESTURE_INFO.classes, 16, 64, "number", 3, False)
    frames = _real_windows(binning, 8 + 8)
    warm, bench = frames[:8], torch.from_numpy(frames[8:16])  # [8, T, C, h, w]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        model = _make_run(run, binning, warm)
        for batch in () if args.skip_end_to_end else (1, 8):
            predictor = Predictor(run, binning=binning, batch_size=batch)
            predictor.windowing = Windowing(window_us=WINDOW_US)
            paths = sorted(REAL.glob("*.aedat"))
            next(predictor.predict_file(paths[0]))  # warm: the readers' and kernels' first calls
            n, span, start = 0, 0.0, time.perf_counter()
            for path in paths:
                for w in predictor.predict_file(path):
                    n += 1
                    span += (w.t_end_us - w.t_start_us) / 1e6
                    if n >= args.windows:
                        break
                if n >= args.windows:
                    break
            wall = time.perf_counter() - start
            _row(rows, f"predict (end to end), batch {batch}", n / wall, span / wall)
        onnx_path = Path(tmp) / "model.onnx"
        export_run(run, onnx_path, "onnx", binning=binning)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        popcount = Predictor(run, binning=binning).model
        popcount.set_attention_backend("popcount")
        official = None
        if not args.skip_official and (OFFICIAL_DIR / "models").is_dir():
            official = import_official().spikingresformer_dvsg(T=16, img_size=64, num_classes=11)
            official.load_state_dict(model.state_dict())
            official.eval()
        for batch in (1, 8):
            x = bench[:batch]
            fns = {
                "ours forward": _forward(model, x),
                "ours popcount": _forward(popcount, x),
                "onnxruntime": lambda x=x: session.run(None, {"frames": x.numpy()}),
            }
            if official is not None:
                fns["official forward"] = _forward(official, x)
            for name, seconds in interleaved_medians(fns, args.repeats).items():
                _row(rows, f"{name}, batch {batch}", batch / seconds, batch / seconds * 0.5)
        if official is not None:
            with torch.no_grad():
                a, b = model(bench).mean(0), official(bench).mean(0)
            functional.reset_net(model)
            functional.reset_net(official)
            same = bool((a.argmax(1) == b.argmax(1)).all())
            print(
                f"ours vs official logits: max |diff| {float((a - b).abs().max()):.2e}, "
                f"same argmax on all 8 windows: {same}",
                file=sys.stderr,
            )
    print(
        f"spikingresformer_dvsg, 64 px, T=16, 0.5 s windows of real DVS128 recordings, "
        f"{args.threads} threads"
    )
    print_table(["path", "windows/s", "real-time factor"], rows)


if __name__ == "__main__":
    main()
