"""benchmarks/lingbot_chunk.py runs on a CPU with a tiny checkpoint and reports, per option, the figures the
docs quote; its memory table is arithmetic on the release's parameter counts."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import lingbot_chunk  # noqa: E402


def test_memory_table_is_computed_from_the_architecture():
    table = lingbot_chunk.memory_table()
    assert table["computed_not_measured"] is True
    assert 18.4e9 < table["dit_parameters"] < 18.7e9 and table["quantized_parameters"] > 0.98 * table["dit_parameters"]
    assert table["kv_cache_per_chunk_gb"] == pytest.approx(40 * 2 * 4680 * 5120 * 2 / 1e9, abs=0.01)
    plain, int8, fp8 = table["rows"]
    assert plain["weights_gb"] == pytest.approx(37.1, abs=0.1) and int8["weights_gb"] < 0.52 * plain["weights_gb"]
    assert fp8["weights_gb"] == int8["weights_gb"]
    assert plain["fits_default"] == {"24GB": False, "48GB": False, "80GB": True}
    assert int8["fits_default"] == {"24GB": False, "48GB": True, "80GB": True}


def test_unknown_config_is_refused():
    with pytest.raises(SystemExit, match="unknown config"):
        lingbot_chunk.options_of("plain+int4")
    assert lingbot_chunk.options_of("int8+overlap") == {"quantize": "int8", "overlap": True}


def test_tiny_benchmark_reports_each_config():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lingbot_chunk.py"), "--tiny", "--chunks", "2",
                          "--configs", "int8+overlap"], capture_output=True, text=True, check=True, cwd=ROOT)
    report = json.loads(out.stdout)
    (result,) = report["results"]
    assert result["config"] == "int8+overlap" and result["options"]["quantize"] == "int8"
    for key in ("load_s", "first_chunk_ms", "chunk_ms_median", "sustained_fps", "peak_host_rss_bytes",
                "dit_weight_bytes", "kv_cache_bytes"):
        assert result[key] > 0, key
    assert result["frames"] == 9 + 1 and result["peak_gpu_bytes"] is None  # the second chunk made at frame 9
