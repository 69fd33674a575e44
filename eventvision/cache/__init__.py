"""The HDF5 frame (or event) cache: one file per dataset and options, resumable (torch-free).

``store = "events"`` keeps each sample's events instead of frames (`eventvision.cache.events`).

Layout (readable with h5py alone, after ``import hdf5plugin`` for the default bitshuffle-lz4;
the ``layout`` attribute repeats it): ``frames [N, T, 2, h, w]`` float32, one sample per chunk,
bitshuffle-lz4/lzf/gzip/none; ``labels [N]`` int64; ``split [N]`` uint8 (``SPLIT_CODES``: 0 train,
1 test); ``source [N]`` utf-8 path relative to the raw root;
``row [N]`` int64 (labels csv row, -1 for CIFAR10-DVS); ``n_events [N]`` int64. Attributes:
``dataset, classes (JSON), time_steps, split_by, size (N, or [h, w]), sensor (JSON), compression,
eventvision_version, options_hash, options (JSON), manifest (JSON [path, bytes, mtime_ns]),
skipped (JSON [source, row, reason]), complete``.
"""

from __future__ import annotations

from ..datasets.registry import SPLIT_CODES as SPLIT_CODES
from .build import sample_frames as sample_frames
from .identity import CacheHandle as CacheHandle
from .options import COMPRESSIONS as COMPRESSIONS
from .options import STORES as STORES
from .options import CacheOptions as CacheOptions
from .options import folder_options as folder_options
from .options import parse_size as parse_size
from .options import source_options as source_options
from .reader import CacheMeta as CacheMeta
from .reader import CacheSample as CacheSample
from .reader import CacheStats as CacheStats
from .reader import cache_stats as cache_stats
from .reader import open_cache as open_cache
from .reader import read_header as read_header
from .reader import read_sample as read_sample
from .reader import split_rows as split_rows
from .writer import CacheReport as CacheReport
from .writer import merge_shards as merge_shards
from .writer import parse_shard as parse_shard
from .writer import write_cache as write_cache

__all__ = [
    "CacheOptions",
    "folder_options",
    "parse_size",
    "source_options",
    "CacheMeta",
    "CacheStats",
    "CacheSample",
    "CacheHandle",
    "SPLIT_CODES",
    "CacheReport",
    "COMPRESSIONS",
    "STORES",
    "write_cache",
    "merge_shards",
    "open_cache",
    "read_header",
    "split_rows",
    "read_sample",
    "cache_stats",
    "parse_shard",
    "sample_frames",
]
