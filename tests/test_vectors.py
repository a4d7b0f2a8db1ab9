"""tests/vectors/ are exactly what bridge/protocol/messages.py produces and accepts, and the ZMTP vectors work against a
real daemon: this is what makes them a valid oracle for the C# and GDScript clients."""

import json
import subprocess
import sys
from pathlib import Path

import msgpack
import zmtp

from bridge.protocol import messages as p

VECTORS = Path(__file__).parent / "vectors"
INDEX = json.loads((VECTORS / "index.json").read_text())


def meaning(obj):
    if isinstance(obj, dict) and set(obj) == {"$bin"}:
        return bytes.fromhex(obj["$bin"])
    if isinstance(obj, dict):
        return {k: meaning(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [meaning(v) for v in obj]
    return obj


def test_committed_vectors_match_the_implementation(tmp_path):
    subprocess.run([sys.executable, str(VECTORS / "generate.py"), str(tmp_path)], check=True)
    fresh = sorted(f.name for f in tmp_path.iterdir())
    committed = sorted(f.name for f in VECTORS.iterdir() if f.name != "generate.py")
    assert fresh == committed
    for name in fresh:
        assert (tmp_path / name).read_bytes() == (VECTORS / name).read_bytes(), f"{name} is stale: regenerate"


def test_client_vectors_parse_to_their_meaning():
    for v in INDEX:
        if v["kind"] != "message":
            continue
        frames = [(VECTORS / f).read_bytes() for f in v["files"]]
        assert msgpack.unpackb(frames[0], raw=False) == meaning(v["meaning"])
        if v["direction"] == "c2d":
            msg, payload = p.parse(frames)
            assert {k: msg[k] for k in v["meaning"]} == meaning(v["meaning"])  # 1.3's guidance holds bin
            assert payload == (frames[1] if len(frames) > 1 else None)


def test_values_vector_round_trips():
    data = (VECTORS / "msgpack_values.msgpack").read_bytes()
    values = msgpack.unpackb(data, raw=False)
    entry = next(v for v in INDEX if v["name"] == "msgpack_values")
    assert values == meaning(entry["meaning"])
    assert msgpack.packb(values, use_bin_type=True) == data
    assert data.count(b"\xc6\x00\x01\x00\x00") == 1  # the 65536-byte bin uses bin32


def test_zmtp_vectors_structure():
    greeting = (VECTORS / "zmtp_greeting.bin").read_bytes()
    assert len(greeting) == 64 and greeting[0] == 0xFF and greeting[9] == 0x7F and greeting[10:12] == b"\x03\x01"
    assert greeting[12:32] == b"NULL" + bytes(16)
    long_frame = (VECTORS / "zmtp_long_frame.bin").read_bytes()
    assert long_frame[0] == 0x02 and int.from_bytes(long_frame[1:9], "big") == 300 and len(long_frame) == 309


def test_raw_zmtp_client_from_vectors(maze_daemon):
    """Speak to the daemon with nothing but the vector bytes and a TCP socket."""
    host, port = maze_daemon.address[len("tcp://"):].rsplit(":", 1)
    c = zmtp.RawDealer(host, int(port))
    try:
        c.sock.sendall((VECTORS / "zmtp_message_hello.bin").read_bytes())
        welcome = msgpack.unpackb(c.recv()[0], raw=False)
        assert welcome["type"] == "welcome" and welcome["row_order"] == "bottom_up"
        c.sock.sendall(zmtp.message([(VECTORS / "input.msgpack").read_bytes()]))
        c.sock.sendall(zmtp.message([(VECTORS / "credit.msgpack").read_bytes()]))
        seen = []
        for _ in range(5):  # 2 credits from the hello, 3 from the credit vector
            header, pixels = c.recv()
            h = msgpack.unpackb(header, raw=False)
            assert h["type"] == "frame" and len(pixels) == h["width"] * h["height"] * 3 > 255  # a LONG frame
            seen.append((h["input_seq"], h["input_t"]))
        assert seen[-1] == (7, 12.25) and set(seen) <= {(-1, 0.0), (7, 12.25)}
        c.sock.sendall(zmtp.message([(VECTORS / "bye.msgpack").read_bytes()]))
        assert msgpack.unpackb(c.recv()[0], raw=False) == msgpack.unpackb(
            (VECTORS / "bye_reply.msgpack").read_bytes(), raw=False)
    finally:
        c.close()


def test_guidance_vector_holds_its_documented_buffers():
    """input_guidance is bottom_up with f16 depth: decoded, its top row is the second row of bytes. The arrays
    are written out here, not taken from generate.py, so a wrong flip or dtype there shows."""
    from bridge.protocol import guidance

    msg, _ = p.parse([(VECTORS / "input_guidance.msgpack").read_bytes()])
    spec = msg["guidance"]
    assert (spec["width"], spec["height"], spec["row_order"], spec["depth_format"]) == (4, 2, "bottom_up", "f16")
    b = guidance.decode(spec, guidance.offer(["colour", "depth", "ids"], 8, 4, [1, 2]))
    assert b.depth.dtype == "float32" and b.depth.tolist() == [[0.5, 1.0, 2.5, float("inf")], [4.0, 8.0, 0.0, 1.25]]
    assert b.ids.dtype == "uint16" and b.ids.tolist() == [[1, 2, 3, 65535], [0, 256, 7, 8]]
    assert b.colour.dtype == "uint8" and b.colour[0, 0].tolist() == [0, 10, 20]
    assert b.colour[1, 3].tolist() == [210, 220, 230]
    assert spec["colour"][:3] == bytes([120, 130, 140])  # on the wire the bottom row comes first
