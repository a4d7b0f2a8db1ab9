"""A client written only from docs/protocol.md: plain pyzmq + msgpack, no project imports on the client side.

If this test needs a change, the documentation probably does too.
"""

import time

import msgpack
import zmq


def send(sock, msg):
    sock.send(msgpack.packb(msg, use_bin_type=True))


def recv(sock):
    assert sock.poll(10_000), "daemon did not answer"
    frames = sock.recv_multipart()
    return msgpack.unpackb(frames[0], raw=False), frames[1:]


def test_handshake_stream_300_error_and_continue(maze_daemon):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(maze_daemon.address)
    send(sock, {"type": "hello", "major": 1, "minor": 0, "client": "docs-only", "engine": "godot",
                "width": 80, "height": 60, "format": "rgba8", "row_order": "top_down", "credits": 2})
    welcome, _ = recv(sock)
    assert welcome["type"] == "welcome" and (welcome["width"], welcome["height"]) == (80, 60)

    seq, frames = 0, []
    while len(frames) < 300:
        seq += 1
        send(sock, {"type": "input", "seq": seq, "t": time.monotonic(), "move": [0.0, 1.0], "look": [2.0, 0.0],
                    "buttons": 0})
        msg, payload = recv(sock)
        assert msg["type"] == "frame", msg
        assert len(payload) == 1 and len(payload[0]) == 80 * 60 * 4
        frames.append(msg)
        send(sock, {"type": "credit", "n": 1})
        if len(frames) == 150:  # a malformed message halfway: documented error, then carry on
            sock.send(b"\x93\x01\x02")  # a msgpack array, not a map
            while (msg := recv(sock)[0])["type"] == "frame":
                frames.append(msg)
            assert (msg["type"], msg["code"], msg["name"]) == ("error", 400, "malformed")
    assert [f["seq"] for f in frames] == list(range(len(frames)))
    assert frames[-1]["input_seq"] >= seq - 2
    assert frames[-1]["pose"]["p"] != frames[0]["pose"]["p"]  # it walked
    send(sock, {"type": "bye"})
    while (msg := recv(sock)[0])["type"] == "frame":
        pass
    assert msg == {"type": "bye"}
    sock.close(0)
