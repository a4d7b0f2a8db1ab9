"""The 60-second soak (benchmarks/soak.py): 8 clients against one daemon process. A leak and correctness check,
not a speed test: no errors, every client served all along, daemon memory growth under 10%, a clean exit."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_soak_8_clients_for_60_seconds():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--clients", "8", "--seconds", "60",
                          "--json"], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout)
    assert r["errors"] == 0, r["error_samples"]
    assert min(r["frames_per_client"]) > 200  # nobody starved (30 FPS pace: ~1800 each when unloaded)
    assert r["sessions"] > r["clients"] and r["bad_messages_answered"] > 0  # sessions came and went; bad input
    assert r["rss_mb"]["growth_pct"] < 10, r["rss_mb"]
    assert r["daemon_alive_at_end"] and r["daemon_exit_code"] == 0
