"""Shared fixtures: real daemons in real processes on ephemeral loopback ports."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/zmtp.py

from bridge.launch import DaemonProcess  # noqa: E402


@pytest.fixture(scope="module")
def maze_daemon():
    """One maze daemon per test module (with a short idle timeout nobody waits for)."""
    with DaemonProcess("maze", "--max-sessions", "8") as d:
        yield d
