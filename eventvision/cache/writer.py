"""Writing a frame cache: resumable blocks, worker processes, one writer, atomic rename."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..datasets.folder import check_utf8_name
from ..errors import CacheError, CacheMismatchError, FormatError
from ..files import write_atomic
from .build import compute_block
from .events import copy_event_rows
from .identity import check_build, new_build_id
from .layout import SAMPLE_DATASETS, create_h5, create_layout, write_attrs
from .lock import output_lock
from .options import CacheOptions, Plan, plan_samples, source_manifest
from .reader import check_sources, describe_options_difference, read_header

__all__ = ["write_cache", "merge_shards", "CacheReport", "parse_shard"]

logger = logging.getLogger(__name__)

_BLOCK_BYTES = 8 << 20  # frames held per block of CIFAR10-DVS samples, before compression
_PARTS_STATE = "state.json"
_EVENT_BLOCK_SAMPLES = 16  # ~3 MB of events each for CIFAR10-DVS, before compression


@dataclass
class CacheReport:
    """What a build (or a reuse) did: the numbers of the closing summary."""

    path: Path
    reused: bool = False
    samples: dict[str, int] = field(default_factory=dict)  # per split
    n_events: int = 0
    wall_s: float = 0.0
    size_bytes: int = 0
    skipped: list[tuple[str, int, str]] = field(default_factory=list)  # (source, row, reason)
    resumed_blocks: int = 0
    shard: tuple[int, int] | None = None


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` to ``(i, N)`` with ``0 <= i < N``."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise CacheError(f"shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise CacheError(f"shard {text!r}: need 0 <= i < N")
    return i, n


def _default_block_samples(options: CacheOptions) -> int:
    if options.store == "events":
        return _EVENT_BLOCK_SAMPLES
    sample_bytes = 4 * int(np.prod(options.frame_shape))
    return int(max(1, min(64, _BLOCK_BYTES // sample_bytes)))


def write_cache(
    options: CacheOptions,
    raw_root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    skip_bad: bool = False,
    overwrite: bool = False,
    block_samples: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    wait: bool = False,
) -> CacheReport:
    """Build the frame cache of ``raw_root`` at ``out``, resuming or reusing what is there.

    Blocks of samples are computed by ``workers`` processes and written by this one into
    ``<out>.parts/``, each part renamed into place when complete, so a killed run resumes where
    it stopped. The parts are then joined into ``<out>.tmp``, renamed to ``out``. A complete
    ``out`` with the same options and sources is reused at once; other options raise
    CacheMismatchError (``overwrite=True`` rebuilds).

    Args:
        shard: ``(i, N)``: build only every N-th block from i, into a shard file for
            :func:`merge_shards`.
        skip_bad: leave out the samples of sources that fail to read, and list them, instead
            of raising FormatError naming the first.
        progress: called with (samples, events) after each block is written.
        on_start: called once with (samples to do, samples already done).
        wait: when another process writes ``out``, wait for it instead of raising
            CacheBusyError (one writer per output: ``<out>.lock``, see docs/preprocess.md).
    """
    t_start = time.perf_counter()
    out, raw_root = Path(out), Path(raw_root).resolve()
    block_samples = block_samples or _default_block_samples(options)
    plan = plan_samples(options, raw_root, block_samples)
    for source in plan.sources:  # before anything is written: the cache stores them as UTF-8
        check_utf8_name(raw_root / source)
    manifest = source_manifest(raw_root, plan.sources)
    with output_lock(out, wait=wait):  # one writer per output, to the end
        report = CacheReport(out, shard=shard)
        parts = out.with_name(out.name + ".parts")
        if out.exists() and _reusable(out, options, manifest, shard, overwrite, raw_root):
            report.reused = True
            shutil.rmtree(parts, ignore_errors=True)  # a writer killed while removing them
            return _report_existing(report, out, t_start)
        done = _prepare_parts(parts, options, manifest, shard, block_samples, overwrite)
        my_blocks = [
            b for b in range(len(plan.blocks)) if shard is None or b % shard[1] == shard[0]
        ]
        todo = [b for b in my_blocks if b not in done]
        report.resumed_blocks = len(my_blocks) - len(todo)
        if on_start is not None:
            on_start(sum(len(plan.blocks[b]) for b in todo), sum(len(plan.blocks[b]) for b in done))
        for result in _compute_blocks(options, raw_root, plan, todo, parts, skip_bad, workers):
            if result.bad and not skip_bad:
                raise FormatError(f"{result.bad[0][2]} (--skip-bad skips bad sources)")
            if progress is not None:
                progress(len(plan.blocks[result.block]), result.n_events)
        part_files = [_part_path(parts, b) for b in my_blocks]
        _assemble(out, part_files, options, manifest, raw_root, len(plan.samples), shard, skip_bad)
        shutil.rmtree(parts, ignore_errors=True)
        return _report_existing(report, out, t_start)


def _reusable(out, options, manifest, shard, overwrite, raw_root=None) -> bool:
    """True when ``out`` already holds this build; raise when it holds another, unless overwrite."""
    try:
        header = read_header(out)
    except CacheError:
        if overwrite:
            return False
        raise
    if overwrite:
        return False
    if header.get("options_hash") != options.hash():
        raise CacheMismatchError(
            f"{out} was built with other options: "
            f"{describe_options_difference(header.get('options', {}), options.to_dict())}; "
            "choose another output file or pass --overwrite"
        )
    if header.get("shard") != (f"{shard[0]}/{shard[1]}" if shard else None):
        raise CacheMismatchError(
            f"{out} holds shard {header.get('shard') or 'none (a whole cache)'}, "
            f"requested {f'{shard[0]}/{shard[1]}' if shard else 'a whole cache'}; "
            "choose another output file or pass --overwrite"
        )
    if not header["finished"]:
        raise CacheError(f"{out} exists but is not a finished cache; pass --overwrite to rebuild")
    check_sources(
        out, header.get("manifest"), raw_root, current=manifest, hint="pass --overwrite to rebuild"
    )
    return True


def _report_existing(report: CacheReport, out: Path, t_start: float) -> CacheReport:
    with h5py.File(out, "r") as f:
        split = f["split"][:]
        report.samples = {"train": int((split == 0).sum()), "test": int((split == 1).sum())}
        report.n_events = int(f["n_events"][:].sum())
        report.skipped = [tuple(s) for s in json.loads(f.attrs["skipped"])]
    report.wall_s = time.perf_counter() - t_start
    report.size_bytes = out.stat().st_size
    return report


def _prepare_parts(parts: Path, options, manifest, shard, block_samples, overwrite) -> set[int]:
    """Make ``parts`` hold parts of this very build; return the blocks already written."""
    state = {
        "options_hash": options.hash(),
        "options": options.to_dict(),
        "manifest": manifest,
        "shard": list(shard) if shard else None,
        "block_samples": block_samples,
    }
    state_file = parts / _PARTS_STATE
    if parts.exists() and state_file.exists():
        old = json.loads(state_file.read_text())
        # Parts of this very build are resumed even with overwrite (it concerns ``out``), so
        # a killed ``--overwrite`` run resumes too.
        if old.get("options_hash") != state["options_hash"] and not overwrite:
            raise CacheMismatchError(
                f"{parts} holds a build with other options: "
                f"{describe_options_difference(old.get('options', {}), state['options'])}; "
                "pass --overwrite to discard it"
            )
        if old == state:
            done = set()
            for p in parts.glob("block-*.h5"):
                done.add(int(p.stem.split("-")[1]))
            for p in parts.glob("*.tmp"):
                p.unlink()
            logger.info("resuming %s: %d blocks already written", parts, len(done))
            return done
        logger.warning("%s: written for other options or sources; restarting", parts)
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True)
    write_atomic(state_file, json.dumps(state))
    return set()


def _part_path(parts: Path, block: int) -> Path:
    return parts / f"block-{block:06d}.h5"


def _compute_blocks(options, raw_root: Path, plan: Plan, todo, parts: Path, skip_bad, workers):
    """Yield the BlockResult of each block of ``todo`` in order, at most 2 per worker in flight."""
    tasks = (
        (
            options,
            str(raw_root),
            b,
            [(i, plan.samples[i]) for i in plan.blocks[b]],
            str(_part_path(parts, b)),
            skip_bad,
        )
        for b in todo
    )
    if workers <= 1 or len(todo) <= 1:
        for task in tasks:
            yield compute_block(*task)
        return
    compute_block(options, str(raw_root), -1, [], None, skip_bad)  # compile kernels before fork
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ctx.Pool(workers) as pool:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.apply_async(compute_block, task))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _assemble(
    out: Path, inputs: Sequence[Path], options, manifest, raw_root, n_planned, shard, skip_bad=True
):
    """Join part (or shard) files, each with an ``index``, into ``out`` in index order, atomically.

    Frames are copied chunk by chunk as stored (already compressed), never decoded. At most
    a few inputs are open at a time: each open HDF5 file costs about 1 MiB of caches, and a
    large build has thousands of parts.
    """
    rows = []  # (sample index, input number, row in that input)
    skipped = []  # (source, csv row, reason), sorted so that any split into inputs agrees
    for k, path in enumerate(inputs):
        with h5py.File(path, "r") as f:
            rows += [(int(i), k, r) for r, i in enumerate(f["index"][:])]
            skipped += json.loads(f.attrs["skipped"])
    rows.sort()
    skipped.sort()
    if skipped and not skip_bad:  # parts of an earlier --skip-bad run
        raise FormatError(f"{skipped[0][2]} (--skip-bad skips bad sources)")
    indices = [i for i, _, _ in rows]
    if len(set(indices)) != len(indices):
        raise CacheError(f"the inputs of {out} hold some samples twice")
    if shard is None and len(rows) + len(skipped) != n_planned:
        raise CacheError(
            f"the inputs of {out} hold {len(rows)} samples and {len(skipped)} skipped ones, "
            f"but the build plans {n_planned}"
        )
    tmp = out.with_name(out.name + ".tmp")
    columns = {name: [] for name in SAMPLE_DATASETS}
    with create_h5(tmp) as g, _OpenInputs(inputs) as opened:
        create_layout(g, options, len(rows), with_index=shard is not None)
        if options.store == "events":
            copy_event_rows(g, [(k, r) for _, k, r in rows], lambda k: opened.get(k)[0])
        else:
            dst_frames = g["frames"].id
            zeros = (0,) * len(options.frame_shape)
        for n, (_, k, r) in enumerate(rows):
            src, values = opened.get(k)
            if options.store == "frames":
                mask, chunk = src["frames"].id.read_direct_chunk((r, *zeros))
                dst_frames.write_direct_chunk((n, *zeros), chunk, mask)
            for name in SAMPLE_DATASETS:
                columns[name].append(values[name][r])
        if rows:
            for name, column in columns.items():
                g[name][...] = column
        if shard is not None:
            g["index"][...] = indices
        write_attrs(g, options, manifest, raw_root, n_planned, skipped)
        g.attrs["shard"] = f"{shard[0]}/{shard[1]}" if shard else ""
        # A shard is finished but is not a cache: the loader must never take it for one.
        g.attrs["complete"] = shard is None
        g.attrs["shard_complete"] = shard is not None
        g.attrs["build_id"] = new_build_id(options)
    os.replace(tmp, out)


class _OpenInputs:
    """The last few input files read, kept open; each with its per-sample columns in memory."""

    def __init__(self, paths: Sequence[Path], keep: int = 8) -> None:
        self.paths, self.keep = paths, keep
        self.open: dict[int, tuple] = {}

    def get(self, k: int):
        if k not in self.open:
            if len(self.open) >= self.keep:
                oldest = next(iter(self.open))
                self.open.pop(oldest)[0].close()
            f = h5py.File(self.paths[k], "r")
            values = {
                name: (f[name].asstr()[:] if name == "source" else f[name][:])
                for name in SAMPLE_DATASETS
            }
            self.open[k] = (f, values)
        return self.open[k]

    def __enter__(self) -> _OpenInputs:
        return self

    def __exit__(self, *exc) -> None:
        for f, _ in self.open.values():
            f.close()
        self.open.clear()


def merge_shards(
    shards: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    wait: bool = False,
) -> CacheReport:
    """Join the shard files ``i/N`` of one build into the cache a single run makes.

    Every shard of the build must be given once, all finished, with the same options and
    source manifest.
    """
    t_start = time.perf_counter()
    out, paths = Path(out), [Path(p) for p in shards]
    if not paths:
        raise CacheError("merge needs at least one shard file")
    headers = [read_header(p) for p in paths]
    first = headers[0]
    seen: dict[int, Path] = {}
    for path, h in zip(paths, headers, strict=True):
        if not h.get("shard"):
            raise CacheError(f"{path} is not a shard (no shard attribute); nothing to merge")
        if not h["finished"]:
            raise CacheError(f"{path}: shard {h['shard']} is unfinished; rerun its preprocess")
        if h["options_hash"] != first["options_hash"]:
            raise CacheMismatchError(
                f"{path} and {paths[0]} were built with other options: "
                f"{describe_options_difference(first['options'], h['options'])}"
            )
        if h["manifest"] != first["manifest"]:
            raise CacheMismatchError(f"{path} and {paths[0]} were built from other source files")
        i, n = parse_shard(h["shard"])
        if n != parse_shard(first["shard"])[1]:
            raise CacheError(f"{path} is shard {h['shard']}, {paths[0]} is {first['shard']}")
        if i in seen:
            raise CacheError(f"{path} and {seen[i]} are both shard {h['shard']}")
        seen[i] = path
    n_shards = parse_shard(first["shard"])[1]
    missing = sorted(set(range(n_shards)) - set(seen))
    if missing:
        raise CacheError(f"missing shard(s) {', '.join(f'{i}/{n_shards}' for i in missing)}")
    options = CacheOptions.from_dict(first["options"])
    report = CacheReport(out)
    order = sorted(range(len(paths)), key=lambda k: parse_shard(headers[k]["shard"])[0])
    with output_lock(out, wait=wait):
        if out.exists() and _reusable(
            out, options, first["manifest"], None, overwrite, first["raw_root"]
        ):
            report.reused = True
            return _report_existing(report, out, t_start)
        for k in order:
            check_build(paths[k], headers[k].get("build_id"))
        _assemble(
            out,
            [paths[k] for k in order],
            options,
            first["manifest"],
            first["raw_root"],
            first["n_planned"],
            None,
        )
        return _report_existing(report, out, t_start)
