"""Drive a session one frame at a time, shared by the daemon tests."""

from bridge.client.client import Client, FrameMsg


def lockstep(c: Client, n: int, timeout: float | None = None, **input_kw) -> list[FrameMsg]:
    """n frames, each answering exactly one input: the input goes out before the credit that pays for it."""
    frames = []
    for _ in range(n):
        seq = c.send_input(**input_kw)
        c.grant(1)
        frames.append(c.recv_frame(timeout=timeout))
        assert frames[-1].header["input_seq"] == seq
    return frames
