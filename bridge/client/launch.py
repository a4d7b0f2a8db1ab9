"""Start `worldbridge serve` as a child process and learn its address (for bench, tests and the viewer)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import deque

READY_PREFIX = "worldbridge: serving "


class DaemonProcess:
    """A daemon in its own process (by default on an ephemeral loopback port). Use as a context manager."""

    def __init__(self, world: str = "maze", *args: str, bind: str = "tcp://127.0.0.1:0", timeout: float = 120.0):
        cmd = [sys.executable, "-m", "bridge.tools.cli", "serve", "--world", world, "--bind", bind, *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.log: deque[str] = deque(maxlen=200)
        ready = threading.Event()
        self.address = ""

        def pump() -> None:  # keep reading so the child never blocks on a full pipe
            for line in self.proc.stdout:
                self.log.append(line.rstrip())
                if line.startswith(READY_PREFIX) and not ready.is_set():
                    self.address = line.split(" on ", 1)[1].strip()
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or not self.address:
            self.stop()
            raise RuntimeError("daemon did not start:\n" + "\n".join(self.log))

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait; returns the exit code (kills after `timeout`)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
