"""A run killed with SIGKILL resumes with the same command and ends with the same content."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from eventvision.cache import CacheOptions, write_cache

# Each block (2 samples) is followed by a pause, so the kill lands mid-run.
SCRIPT = """
import sys, time
from eventvision.cache import CacheOptions, write_cache
report = write_cache(
    CacheOptions("cifar10-dvs", time_steps=4, size=32), sys.argv[1], sys.argv[2],
    workers=int(sys.argv[3]), block_samples=2, progress=lambda n, e: time.sleep(0.1),
)
print("resumed", report.resumed_blocks)
"""


def _run_and_kill(raw_root, out, workers: int, after_parts: int) -> None:
    parts = out.with_name(out.name + ".parts")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(raw_root), str(out), str(workers)])
    try:
        deadline = time.monotonic() + 60
        while len(list(parts.glob("block-*.h5"))) < after_parts:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_then_same_command_completes_identically(cifar_root, tmp_path, raw):
    out = tmp_path / "c.h5"
    _run_and_kill(cifar_root, out, workers=2, after_parts=3)
    assert not out.exists()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(cifar_root), str(out), "1"],
        check=True,
        capture_output=True,
        text=True,
    )
    resumed = int(done.stdout.split()[-1])
    assert 3 <= resumed < 15, done.stdout
    reference = tmp_path / "ref.h5"
    write_cache(CacheOptions("cifar10-dvs", time_steps=4, size=32), cifar_root, reference)
    raw.assert_same_content(out, reference)
    assert not out.with_name("c.h5.parts").exists()
