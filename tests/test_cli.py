"""The command line as users run it: real processes, real output."""

import json
import subprocess
import sys

import pytest

from bridge.client.launch import DaemonProcess


def worldbridge(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "bridge.tools.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_bench_json_keys():
    r = worldbridge("bench", "--world", "maze", "--frames", "60", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("fps", "latency_ms", "frames", "world", "width", "height", "daemon_overhead_ms"):
        assert key in out
    assert out["world"] == "maze" and out["frames"] == 60 and (out["width"], out["height"]) == (128, 128)
    assert out["fps"] > 0 and set(out["latency_ms"]) == {"p50", "p95", "p99"}
    m = out["machine"]  # which CPU class the figures belong to
    assert m["cores"] >= 1 and m["torch_cpu_capability"] in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256")
    assert "avx2" in m["isa"] or m["torch_cpu_capability"] != "AVX2"


def test_demo_writes_a_gif(tmp_path):
    from PIL import Image

    gif = tmp_path / "demo.gif"
    r = worldbridge("demo", "--world", "maze", "--frames", "24", "--size", "64", "--out", str(gif))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["frames"] == 24
    with Image.open(gif) as im:
        assert im.n_frames == 24 and im.size == (256, 256)


@pytest.mark.parametrize(
    "args, message",
    [
        (["serve", "--world", "/no/such/dir"], "not 'maze'"),
        (["serve", "--world", "maze:abc"], "level seed must be an integer"),
        (["serve", "--world", "maze", "--bind", "tcp://0.0.0.0:0"], "refusing to bind"),
    ],
)
def test_serve_user_errors_are_one_line(args, message):
    r = worldbridge(*args, timeout=60)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_port_in_use_is_a_clear_error():
    with DaemonProcess("maze") as d:
        r = worldbridge("serve", "--world", "maze", "--bind", d.address, timeout=60)
        assert r.returncode == 2 and "Address already in use" in r.stderr


def test_help_has_examples():
    for cmd in ("serve", "bench", "demo"):
        r = worldbridge(cmd, "--help", timeout=60)
        assert r.returncode == 0 and "examples:" in r.stdout


def test_bench_neural_world_reports_every_figure(tmp_path):
    from pathlib import Path

    from runtime.neural.checkpoint import init_checkpoint

    model = tmp_path / "tiny"
    init_checkpoint(model, Path(__file__).resolve().parents[1] / "runtime/configs/tiny.yaml")
    out = tmp_path / "bench.json"
    r = worldbridge("bench", "--world", str(model), "--frames", "30", "--sessions", "1,2",
                    "--backends", "torch-fp32,onnx-int8", "--long", "80", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "2 sessions" in r.stdout and "onnx-int8" in r.stdout  # the table
    report = json.loads(out.read_text())
    assert [c["sessions"] for c in report["concurrent"]] == [1, 2]
    assert all(c["aggregate_fps"] > 0 for c in report["concurrent"])
    assert report["backends"]["torch-fp32"]["psnr_vs_fp32_db"] == 100.0  # the reference against itself
    assert report["backends"]["onnx-int8"]["psnr_vs_fp32_db"] < 100.0
    assert report["cache"]["frame_ms_at_80"] > 0 and report["cache"]["cached_speedup"] > 0
    assert report["daemon_peak_rss_mib"] > 10
