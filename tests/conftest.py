"""Shared fixtures: real daemons in real processes on ephemeral loopback ports."""

import os
import sys
import tempfile
from pathlib import Path

# One compute thread per process (children inherit it): tests run daemons and clients side by side on a
# 2-core machine, and oversubscribed torch threads make everything many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# --dtype auto / --backend auto remember their measurements (runtime/neural/calibrate.py): the tests' throwaway
# models go to a throwaway cache, not the user's
os.environ["WORLDBRIDGE_CACHE"] = tempfile.mkdtemp(prefix="worldbridge-cache-")

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/zmtp.py

from bridge.client.launch import DaemonProcess  # noqa: E402


@pytest.fixture(scope="module")
def maze_daemon():
    """One maze daemon per test module (with a short idle timeout nobody waits for)."""
    with DaemonProcess("maze", "--max-sessions", "8") as d:
        yield d
